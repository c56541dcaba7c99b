//! Gives libpcp_rs.so a SONAME carrying the major version (libpcp_rs.so.0).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "freebsd" || target_os == "netbsd" || target_os == "openbsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpcp_rs.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
