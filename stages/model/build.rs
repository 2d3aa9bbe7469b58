//! Embed libtorch's directory as an rpath so tests and examples load `libtorch_cpu.so`
//! without LD_LIBRARY_PATH, keep `libtorch_cuda` linked (`--no-as-needed`) so the CUDA
//! kernels are there when a GPU is, and record the libtorch version (part of the
//! training stage's key).
fn main() {
    let mut version = "unknown".to_string();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
        let py = std::path::Path::new(&lib).join("../version.py");
        println!("cargo:rerun-if-changed={}", py.display());
        if let Ok(text) = std::fs::read_to_string(&py) {
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix("__version__ = ")) {
                version = v.trim().trim_matches(['\'', '"']).to_string();
            }
        }
    }
    println!("cargo:rustc-env=PIPE_LIBTORCH_VERSION={version}");
}
