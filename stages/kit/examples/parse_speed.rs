//! Where extraction time goes: single-threaded read, hash and parse of a folder of MMM
//! files, and the general parser alone (what `parse` falls back to on irregular
//! layouts), checked to read every file the same. Each step is timed `REPS` times
//! (default 3) and reported by its best run (this machine's speed drifts).
//! `cargo run -p pipe-kit --example parse_speed -- DIR [REPS]`
use std::time::Instant;

fn best(reps: usize, mb: f64, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut top: f64 = 0.0;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        top = top.max(mb / t.elapsed().as_secs_f64());
    }
    Ok(top)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: parse_speed DIR [REPS]"))?;
    let reps: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_mmm.xml"))
        .collect();
    files.sort();
    let t = Instant::now();
    let data: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mb = data.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!(
        "read    {:>7.0} MB/s ({mb:.0} MB)",
        mb / t.elapsed().as_secs_f64()
    );
    let hash = best(reps, mb, || {
        for d in &data {
            std::hint::black_box(blake3::hash(d));
        }
        Ok(())
    })?;
    println!("blake3  {hash:>7.0} MB/s");
    let mut frames = 0;
    let parse = best(reps, mb, || {
        frames = 0;
        for d in &data {
            frames += pipe_kit::mmm::parse(d, Default::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .frames();
        }
        Ok(())
    })?;
    println!("parse   {parse:>7.0} MB/s ({frames} frames)");
    let general = best(reps, mb, || {
        for d in &data {
            pipe_kit::mmm::parse_general(d, Default::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    })?;
    println!("general {general:>7.0} MB/s (the general parser alone)");
    for (d, f) in data.iter().zip(&files) {
        if pipe_kit::mmm::parse(d, Default::default())
            != pipe_kit::mmm::parse_general(d, Default::default())
        {
            anyhow::bail!("{}: the fast and the general parser differ", f.display());
        }
    }
    Ok(())
}
