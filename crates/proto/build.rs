fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps the build free of system packages.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/cocoon.proto");
    tonic_prost_build::configure()
        // Body and chunk bytes stay reference-counted: relaying never copies them.
        .bytes(".")
        .compile_protos(&["proto/cocoon.proto"], &["proto"])?;
    Ok(())
}
