//! Lets this crate's tests (unit and integration) find the prebuilt `libduckdb.so` at run
//! time (see `.cargo/config.toml` and `scripts/fetch-duckdb.sh`).

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
