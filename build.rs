//! The `pipe` binary links libtorch (through the motion.train stage crate): embed its
//! directory as an rpath so the binary starts without LD_LIBRARY_PATH, and keep
//! `libtorch_cuda` linked (`--no-as-needed`) so CUDA is used where there is a GPU.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
