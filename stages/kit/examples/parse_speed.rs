//! Where extraction time goes: single-threaded read, parse, hash of a folder of MMM files.
//! `cargo run -p pipe-kit --example parse_speed -- DIR`
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: parse_speed DIR"))?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_mmm.xml"))
        .collect();
    files.sort();
    let t = Instant::now();
    let data: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mb = data.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!("read   {:>7.0} MB/s", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    for d in &data {
        let _ = blake3::hash(d);
    }
    println!("blake3 {:>7.0} MB/s", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut frames = 0;
    for d in &data {
        frames += pipe_kit::mmm::parse(d, Default::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .frames();
    }
    println!(
        "parse  {:>7.0} MB/s ({frames} frames)",
        mb / t.elapsed().as_secs_f64()
    );
    Ok(())
}
