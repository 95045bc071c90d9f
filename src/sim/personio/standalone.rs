//! The simulator as a process of its own (`reteach-personio-operator sim`), for demos and manual
//! exploration with curl.

use std::net::SocketAddr;

use super::{PersonioSim, PersonioSimConfig, SharedIpLimit};

/// Serves a generated company of `employees` on `addr` until Ctrl-C; with `ip_limit`, at most
/// that many requests per minute in all (Personio's per-IP limit), whatever the endpoint. Rate
/// limits refill `time_scale` times faster than Personio's (1.0: Personio's own rates).
pub async fn run_standalone(
    addr: SocketAddr,
    employees: usize,
    ip_limit: Option<usize>,
    time_scale: f64,
) -> std::io::Result<()> {
    let sim = PersonioSim::new(PersonioSimConfig {
        ip_limit: ip_limit.map(|per_minute| SharedIpLimit::new(per_minute, time_scale)),
        time_scale,
        ..PersonioSimConfig::default()
    });
    sim.populate(employees, 42);
    // One document already in an employee file, as in any real company: `preflight` confirms
    // with it that the v2 listing's `owner_id` takes the v1 employee id.
    if let Some(first) = sim.employee_ids().first() {
        sim.insert_document(*first, 2, "Employment contract", None);
    }
    let running = sim.start(addr).await?;
    let (client_id, client_secret) = sim.credentials();
    // These are the simulator's fixed demo credentials, not secrets of any real tenant.
    println!("Personio simulator listening on {}", running.base_url());
    println!("  employees: {employees}; client_id={client_id} client_secret={client_secret}");
    tokio::signal::ctrl_c().await?;
    println!("Personio simulator stopped");
    Ok(())
}
