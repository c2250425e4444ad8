//! Link libtorch so the binary runs without LD_LIBRARY_PATH and sees CUDA.
//!
//! tch's own build gives the final binary neither an rpath to libtorch nor a
//! `NEEDED` entry for `libtorch_cuda.so` (the linker drops it as unused, and
//! then CUDA reports unavailable even on a GPU machine). torch-sys is a direct
//! dependency so that its `links = "tch"` metadata reaches us as
//! `DEP_TCH_LIBTORCH_LIB`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        // Everything that runs torch code gets libtorch_cuda (via libtorch.so)
        // as NEEDED. The front binary `likeness` must not: it never calls torch,
        // the linker's --as-needed drops every torch library from it, and index
        // commands start without loading 500 MB of libtorch.
        for flag in ["-Wl,--no-as-needed", "-ltorch", "-Wl,--as-needed"] {
            println!("cargo:rustc-link-arg-bin=likeness-torch={flag}");
            println!("cargo:rustc-link-arg-tests={flag}");
            println!("cargo:rustc-link-arg-examples={flag}");
        }
        println!("cargo:rustc-env=LIKENESS_LIBTORCH_LIB={lib}");
    } else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: the binary needs LD_LIBRARY_PATH to find libtorch");
        println!("cargo:rustc-env=LIKENESS_LIBTORCH_LIB=");
    }
}
