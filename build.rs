//! `pipe-torch` links libtorch (through the model stage crate): embed its directory
//! as an rpath so the binary starts without LD_LIBRARY_PATH. (`pipe` links none.)
//!
//! `libtorch_cuda` (and with it cuBLAS, cuDNN, NCCL, …) is kept linked
//! (`--no-as-needed`, or libtorch would never see a GPU) only where CUDA can be used:
//! on a machine with an NVIDIA driver (`/proc/driver/nvidia/version`), or when
//! `PIPE_CUDA=1`. Elsewhere it is left out (`PIPE_CUDA=0` forces that): loading it
//! cost every `pipe-torch` process ~0.15 s and ~400 MB of memory on a CPU-only machine.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PIPE_CUDA");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg-bin=pipe-torch=-Wl,-rpath,{lib}");
    let cuda = match std::env::var("PIPE_CUDA").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::path::Path::new("/proc/driver/nvidia/version").exists(),
    };
    if cuda && std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg-bin=pipe-torch=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
