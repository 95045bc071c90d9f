#!/usr/bin/env python3
"""Reads the simulators' state through their public APIs, as an outside observer would.

    upstream.py PERSONIO_URL RETEACH_URL

Prints one JSON object: the Personio employee ids, the reteach customers linked to them, and the
certificate documents per employee. Used by tests/cluster/run.sh to check that the operator pod
changed the upstreams (not only its own status). Credentials are the simulators' fixed demo ones.
"""

import json
import sys
import urllib.parse
import urllib.request


def call(method, url, token=None, body=None, form=None):
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read() or b"null")


def personio(base):
    token = call(
        "POST",
        f"{base}/v2/auth/token",
        form={
            "grant_type": "client_credentials",
            "client_id": "sim-personio-client",
            "client_secret": "sim-personio-secret",
        },
    )["access_token"]
    v1 = call(
        "POST",
        f"{base}/v1/auth",
        body={"client_id": "sim-personio-client", "client_secret": "sim-personio-secret"},
    )["data"]["token"]
    ids = []
    while True:
        page = call(
            "GET", f"{base}/v1/company/employees?limit=100&offset={len(ids)}", token=v1
        )["data"]
        ids.extend(int(e["attributes"]["id"]["value"]) for e in page)
        if len(page) < 100:
            break
    documents = {}
    for employee_id in ids:
        listing = call(
            "GET",
            f"{base}/v2/document-management/documents?owner_id={employee_id}&limit=100",
            token=token,
        )
        items = listing.get("_data", [])
        documents[str(employee_id)] = sum(
            1 for d in items if "reteach-certificate" in (d.get("comment") or "")
        )
    return ids, documents


def reteach(base):
    token = call(
        "POST",
        f"{base}/oauth/authorize",
        body={
            "grant_type": "authorization_code",
            "client_id": "sim-client-id",
            "client_secret": "sim-client-secret",
            "code": "sim-client-code",
        },
    )["access_token"]
    customers = []
    page = 1
    while True:
        listing = call("GET", f"{base}/customer?page={page}&limit=100", token=token)
        items = listing.get("results", [])
        customers.extend(items)
        if len(items) < 100 or len(customers) >= listing.get("resultCount", 0):
            break
        page += 1
    return customers


def main():
    personio_url, reteach_url = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
    ids, documents = personio(personio_url)
    customers = reteach(reteach_url)
    linked = [
        c for c in customers if str(c.get("externalId") or "") in {str(i) for i in ids}
    ]
    print(
        json.dumps(
            {
                "employees": len(ids),
                "customers": len(customers),
                "linkedCustomers": len(linked),
                "certificateDocuments": sum(documents.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
