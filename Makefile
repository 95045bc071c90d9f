# Convenience targets; CI runs .ci/run.
.PHONY: test ci fmt lint crds chart
HELM ?= helm


test: ## every test, end-to-end included, against a fresh local control plane
	scripts/test.sh

ci: ## what CI runs
	.ci/run

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

crds: ## regenerate crds/ and the chart's copy from the Rust types
	cargo run -- crdgen

chart:
	$(HELM) lint charts/reteach-personio-operator
	$(HELM) template rpo charts/reteach-personio-operator >/dev/null
