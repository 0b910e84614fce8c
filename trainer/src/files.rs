//! Files that must never be seen half written: runs, caches and weights are written whole or
//! not at all, also when two processes write the same file or the machine dies mid-write.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Name of the lock file each directory written to gets (one per directory, not per file).
const LOCK_FILE: &str = ".facemtl.lock";

/// The bytes of `path`, refused before they are read when it holds more than `limit` bytes: a
/// 2 GB file named as a photo, or `/dev/zero`, would otherwise fill memory before any check.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let too_large = || format!("{} is larger than {} MB, the most read for such a file", path.display(), limit >> 20);
    let len = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > limit as u64 {
        bail!(too_large());
    }
    // A device or a pipe says nothing of its length: it is read up to one byte past the limit.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit as u64 + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > limit {
        bail!(too_large());
    }
    Ok(bytes)
}

/// `value` as pretty JSON at `out` (its folder made when missing), written atomically.
pub fn write_json<T: serde::Serialize>(out: &Path, value: &T) -> Result<()> {
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomic(out, serde_json::to_string_pretty(value)?.as_bytes())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Write `bytes` to `path` atomically: a temporary file of a name no other writer uses,
/// fsynced, renamed over `path` while holding the directory's lock, then the directory fsynced
/// so that the rename itself survives a power cut. Readers see the old file or the new one,
/// and of two writers of one file, the last to rename wins whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static UNIQUE: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sweep_once(dir);
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let lock = fs::File::options().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
        lock.lock()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// [`remove_stale_temporaries`] the first time this process writes into `dir`.
fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let first = SWEPT.lock().map(|mut swept| swept.get_or_insert_default().insert(dir.to_path_buf())).unwrap_or(false);
    if first {
        remove_stale_temporaries(dir);
    }
}

/// Removes from `dir` the temporaries a killed process left behind: [`write_atomic`]'s
/// `.NAME.PID-N.tmp` files and setup's `.tmp-PID` staging folders, whenever process PID is
/// gone. A temporary of a live process (another run writing there) is left alone.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Some(pid) = temporary_owner(&entry.file_name().to_string_lossy()) else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}

/// The process that made a temporary of this name; None when the name is no temporary's.
fn temporary_owner(name: &str) -> Option<u32> {
    if let Some(pid) = name.strip_prefix(".tmp-") {
        return pid.parse().ok();
    }
    let (_, owner) = name.strip_prefix('.')?.strip_suffix(".tmp")?.rsplit_once('.')?;
    let (pid, n) = owner.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether process `pid` runs. Without /proc (not Linux) every process counts as running, so
/// that nothing in use is removed.
fn process_alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Read a whole file, with the path in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}: run `facemtl setup` first", path.display()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` followed by their sha256: how the caches store what they cannot afford to read
/// back wrong.
pub fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    bytes
}

/// The bytes written by [`with_checksum`], or `None` when they do not match their sha256.
pub fn checked(bytes: &[u8]) -> Option<&[u8]> {
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    (Sha256::digest(body).as_slice() == digest).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the process holds (resident), from /proc.
    fn resident_bytes() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB");
        kb.trim().parse::<u64>().unwrap() * 1024
    }

    #[test]
    fn temporaries_of_killed_processes_go_and_those_of_live_ones_stay() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        // 4194304 is above Linux's largest process id: no such process runs.
        let dead = [".m.fmtl.4194304-0.tmp", ".faceres.bpk.4194304-2.tmp"];
        // This process's own temporary is named for another file: write_atomic's own would take its name.
        let live = [format!(".other.bin.{}-9.tmp", std::process::id()), ".m.fmtl.1-0.tmp".to_string()];
        for name in dead.iter().map(|n| n.to_string()).chain(live.iter().cloned()) {
            fs::write(dir.join(name), b"half").unwrap();
        }
        fs::create_dir_all(dir.join(".tmp-4194304/package")).unwrap();
        fs::create_dir_all(dir.join(".tmp-1")).unwrap();
        fs::write(dir.join("keep.tmp"), b"not ours").unwrap();
        write_atomic(&dir.join("m.fmtl"), b"model").unwrap();
        let mut left: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut expected = vec![".facemtl.lock", ".m.fmtl.1-0.tmp", ".tmp-1", "keep.tmp", "m.fmtl"];
        expected.push(&live[0]);
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_file_over_its_limit_is_refused_before_it_is_read() {
        let temp = tempfile::tempdir().unwrap();
        // 2 GB that take no disk (sparse): reading them first would take 2 GB of memory.
        let sparse = temp.path().join("huge.jpg");
        fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
        let before = resident_bytes();
        let err = read_bounded(&sparse, 40_000_000).unwrap_err().to_string();
        assert!(err.contains("larger than 38 MB"), "{err}");
        // Read whole, it would take 2 GB; other tests of this process allocate far less.
        assert!(resident_bytes() < before + (1 << 30), "the file was not read");
        // A device says nothing of its length; it is read no further than the limit.
        let err = read_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("larger than 1 MB"), "{err}");
        let small = temp.path().join("small.txt");
        fs::write(&small, b"twelve bytes").unwrap();
        assert_eq!(read_bounded(&small, 12).unwrap(), b"twelve bytes");
        assert!(read_bounded(&small, 11).is_err());
    }

    #[test]
    fn concurrent_writers_of_one_file_never_mix_and_leave_no_temporary_files() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("atomic");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cache.bin");
        let writers: Vec<_> = (0..6u8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        write_atomic(&path, &vec![w; 256 * 1024]).unwrap();
                    }
                })
            })
            .collect();
        let mut reads = 0;
        while writers.iter().any(|w| !w.is_finished()) {
            if let Ok(bytes) = fs::read(&path) {
                assert_eq!(bytes.len(), 256 * 1024, "a partial file was visible");
                assert!(bytes.iter().all(|b| *b == bytes[0]), "two writers' bytes in one file");
                reads += 1;
            }
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert!(reads > 0);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}: the file and the directory's lock only");
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let sealed = with_checksum(b"features".to_vec());
        assert_eq!(checked(&sealed), Some(&b"features"[..]));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 4;
            assert_eq!(checked(&bad), None, "byte {i}");
        }
        assert_eq!(checked(&sealed[..20]), None);
        assert_eq!(checked(b""), None);
    }
}
