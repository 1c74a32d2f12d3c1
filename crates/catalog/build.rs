//! Lets the catalog's tests find the prebuilt `libduckdb.so` at run time without anything
//! exported (see `.cargo/config.toml` and `scripts/fetch-duckdb.sh`).

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{dir}");
    }
}
