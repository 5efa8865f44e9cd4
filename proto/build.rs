//! Compiles the .proto files with protox (pure Rust), so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/ferrocache/admin/v1/admin.proto",
        "proto/ferrocache/internal/v1/cluster.proto",
        "proto/ferrocache/internal/v1/data.proto",
        "proto/ferrocache/internal/v1/replication.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("ferrocache_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    // Every service encodes through codec.rs (prost's encoding, written in one piece).
    tonic_prost_build::configure()
        .bytes(".ferrocache.internal.v1")
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;
    Ok(())
}
