//! Figure 4: memory. The real binary, as its own process, copies one large file item from
//! the source to the target through HTTP (a streamed download, uploaded in parts); its peak
//! RSS should stay under 64 MB and be the same for 100 MiB and 1 GiB. The simulators make
//! the source file as they serve it and keep the uploaded parts on disk, and the copy is
//! checked byte for byte by length and SHA-256.

use std::time::Duration;

use super::daemon::Daemon;
use super::{config_toml, faults, io, temp_dir, BenchError, BenchOptions, Pair, Report};
use crate::sim::files::FileBody;
use crate::sim::generate::{self, GenerateSpec};

const BENCH: &str = "memory";
const MIB: u64 = 1024 * 1024;

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let sizes: &[(u64, &str)] = if options.quick {
        &[(MIB, "1 MiB"), (12 * MIB, "12 MiB")]
    } else {
        &[(100 * MIB, "100 MiB"), (1024 * MIB, "1 GiB")]
    };
    let mut peaks = Vec::new();
    for &(size, label) in sizes {
        let peak = copy_one(options, size).await?;
        let mb = peak as f64 * 1024.0 / 1e6;
        report.figure(
            BENCH,
            format!("peak RSS of the daemon copying a {label} file"),
            mb,
            "MB",
            Some(("< 64", mb < 64.0)),
        );
        peaks.push(mb);
    }
    if let (Some(small), Some(large)) = (peaks.first(), peaks.last()) {
        report.figure(
            BENCH,
            format!(
                "peak RSS ratio, {} file / {} file",
                sizes[sizes.len() - 1].1,
                sizes[0].1
            ),
            large / small,
            "ratio",
            Some(("~1 (within 10%)", (large / small - 1.0).abs() <= 0.10)),
        );
    }
    Ok(())
}

/// Migrates an org of one user owning one file of `size` bytes; returns the peak RSS (KiB).
async fn copy_one(options: &BenchOptions, size: u64) -> Result<u64, BenchError> {
    let spec = GenerateSpec {
        seed: 11,
        users: 1,
        groups: 0,
        folders_per_user: 0,
        items_per_folder: 0,
        ..GenerateSpec::default()
    };
    let source_org = generate::generate(&spec);
    let owner = source_org
        .users
        .iter()
        .map(|u| u.username.clone())
        .find(|name| name != "admin" && !name.starts_with("esri_"))
        .ok_or_else(|| BenchError::Check("the generated org has no ordinary user".into()))?;
    let pair = Pair::start(
        source_org,
        generate::generate_target(&spec),
        faults(0, None),
        None,
    )
    .await?;
    let seed = 42;
    pair.source
        .add_generated_file(&owner, "Large file", "CSV", "large.csv", size, seed)?;
    let dir = temp_dir()?;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_toml(
            &pair.source,
            &pair.target,
            &dir.path().join("state.db"),
            8,
            0,
        ),
    )
    .map_err(io("writing the daemon's config"))?;
    let finished = Daemon::start(&options.daemon, &config)?
        .wait(Duration::from_secs(600))
        .await?;
    if !finished.success {
        return Err(BenchError::Daemon(format!(
            "copying a {size}-byte file failed"
        )));
    }
    let expected = FileBody::Pattern { len: size, seed }
        .digest()
        .await
        .map_err(io("hashing the source pattern"))?;
    let copies = pair.target.file_digests().await?;
    pair.shutdown().await;
    if !copies
        .iter()
        .any(|(_, len, sha)| *len == expected.0 && *sha == expected.1)
    {
        return Err(BenchError::Check(format!(
            "the target holds no exact copy of the {size}-byte file (found {copies:?})"
        )));
    }
    Ok(finished.peak_rss_kib)
}
