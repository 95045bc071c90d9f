//! Runs the Argo CD health checks of `health/argocd/` the way Argo CD does: the object as a Lua
//! table in the global `obj`, the script's returned table read as `status` and `message`.

use std::path::PathBuf;

use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::Value;

/// The kinds that ship a health check.
#[allow(dead_code)] // not every test binary iterates over them
pub const KINDS: [&str; 2] = ["EmployeeSync", "CertificateSync"];

/// Directory of the health check of `kind`, Argo CD's `resource_customizations` layout.
pub fn check_dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("health/argocd/sync.reteach.io")
        .join(kind)
}

/// Argo CD's verdict on `object`: `(status, message)`.
pub fn health(kind: &str, object: &Value) -> (String, String) {
    let path = check_dir(kind).join("health.lua");
    let script = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let lua = Lua::new();
    let obj = lua
        .to_value(object)
        .unwrap_or_else(|e| panic!("cannot convert the object to Lua: {e}"));
    lua.globals()
        .set("obj", obj)
        .unwrap_or_else(|e| panic!("cannot set obj: {e}"));
    let result: Table = lua
        .load(&script)
        .set_name(path.display().to_string())
        .eval()
        .unwrap_or_else(|e| panic!("{} failed on {object}: {e}", path.display()));
    let field = |name: &str| {
        result
            .get::<Option<String>>(name)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    (field("status"), field("message"))
}
