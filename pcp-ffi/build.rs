//! Gives libpcp_rs.so a SONAME carrying the major version (libpcp_rs.so.0),
//! and libpcp_rs.dylib an @rpath install name.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "freebsd" || target_os == "netbsd" || target_os == "openbsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpcp_rs.so.{major}");
    }
    // macOS: the dylib names itself relative to the loader's rpath, so that
    // an application linked against it finds it where it is installed
    // (not at the build folder's absolute path, the default).
    if target_os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libpcp_rs.dylib");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
