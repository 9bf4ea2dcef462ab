//! Item files of any size without holding them in memory: a file is either bytes in memory
//! (what fixtures and small uploads give), a deterministic pattern made as it is served (a
//! 1 GiB source file for a memory benchmark costs nothing), or the parts of a multipart
//! upload kept in temporary files (a 1 GiB upload to the target stays on disk).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};

/// Served in chunks of this size: large enough to keep per-chunk overhead low, small enough
/// that a stream holds little.
const CHUNK: usize = 256 * 1024;

/// Uploads up to this size are kept in memory when committed, so tests that look at small
/// uploaded files see them as they always did.
pub const IN_MEMORY_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub enum FileBody {
    Bytes(Bytes),
    /// `len` bytes of [`pattern`] with this seed.
    Pattern {
        len: u64,
        seed: u64,
    },
    /// Uploaded parts in order, each an unlinked temporary file and its length.
    Spooled {
        parts: Arc<Vec<SpooledPart>>,
    },
}

/// Cheap to clone: the file handle is shared.
#[derive(Clone, Debug)]
pub struct SpooledPart {
    file: Arc<File>,
    len: u64,
}

impl SpooledPart {
    /// Writes one uploaded part to an unlinked temporary file (gone when the last handle
    /// closes, even if the simulator is killed).
    pub fn write(bytes: &[u8]) -> std::io::Result<SpooledPart> {
        let mut file = tempfile::tempfile()?;
        file.write_all(bytes)?;
        Ok(SpooledPart {
            file: Arc::new(file),
            len: bytes.len() as u64,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn read(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let mut buffer = BytesMut::zeroed(len);
        self.file.read_exact_at(&mut buffer, offset)?;
        Ok(buffer.freeze())
    }
}

impl FileBody {
    pub fn len(&self) -> u64 {
        match self {
            FileBody::Bytes(bytes) => bytes.len() as u64,
            FileBody::Pattern { len, .. } => *len,
            FileBody::Spooled { parts } => parts.iter().map(|p| p.len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins uploaded parts: in memory when small, else kept as the part files.
    pub fn from_parts(parts: Vec<SpooledPart>) -> std::io::Result<FileBody> {
        let total: u64 = parts.iter().map(|p| p.len).sum();
        if total > IN_MEMORY_LIMIT {
            return Ok(FileBody::Spooled {
                parts: Arc::new(parts),
            });
        }
        let mut joined = BytesMut::with_capacity(total as usize);
        for part in &parts {
            joined.extend_from_slice(&part.read(0, part.len as usize)?);
        }
        Ok(FileBody::Bytes(joined.freeze()))
    }

    /// The content in chunks. Reads from disk are synchronous: the parts are fresh in the
    /// page cache, and a chunk takes microseconds.
    pub fn stream(&self) -> BoxStream<'static, std::io::Result<Bytes>> {
        match self.clone() {
            FileBody::Bytes(bytes) => futures::stream::once(async move { Ok(bytes) }).boxed(),
            FileBody::Pattern { len, seed } => {
                futures::stream::unfold(0u64, move |offset| async move {
                    if offset >= len {
                        return None;
                    }
                    let n = (len - offset).min(CHUNK as u64) as usize;
                    Some((Ok(pattern(seed, offset, n)), offset + n as u64))
                })
                .boxed()
            }
            FileBody::Spooled { parts } => {
                futures::stream::unfold((0usize, 0u64), move |(index, offset)| {
                    let parts = parts.clone();
                    async move {
                        let mut index = index;
                        let mut offset = offset;
                        while index < parts.len() && offset >= parts[index].len {
                            index += 1;
                            offset = 0;
                        }
                        let part = parts.get(index)?;
                        let n = (part.len - offset).min(CHUNK as u64) as usize;
                        Some(match part.read(offset, n) {
                            Ok(bytes) => (Ok(bytes), (index, offset + n as u64)),
                            Err(e) => (Err(e), (parts.len(), 0)),
                        })
                    }
                })
                .boxed()
            }
        }
    }

    /// The whole content in memory: for the fixture snapshot only.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            FileBody::Bytes(bytes) => bytes.clone(),
            FileBody::Pattern { len, seed } => pattern(*seed, 0, *len as usize),
            FileBody::Spooled { parts } => {
                let mut joined = BytesMut::new();
                for part in parts.iter() {
                    // A part file that cannot be read back leaves a short snapshot; the
                    // snapshot has no error channel and the file was written by us.
                    if let Ok(bytes) = part.read(0, part.len as usize) {
                        joined.extend_from_slice(&bytes);
                    }
                }
                joined.freeze()
            }
        }
    }

    /// Length and SHA-256 (hex) of the content, computed chunk by chunk.
    pub async fn digest(&self) -> std::io::Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut stream = self.stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((len, hex::encode(hasher.finalize())))
    }
}

/// `len` bytes of the pattern with this seed, from `offset`: each 8-byte word is a
/// SplitMix64 output of its position, so the content is deterministic, not periodic, and
/// cheap to make at any offset.
pub fn pattern(seed: u64, offset: u64, len: usize) -> Bytes {
    let first_word = offset / 8;
    let skip = (offset % 8) as usize;
    let words = (skip + len).div_ceil(8);
    let mut out = BytesMut::with_capacity(words * 8);
    for word in first_word..first_word + words as u64 {
        out.extend_from_slice(
            &splitmix(seed ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes(),
        );
    }
    out.freeze().slice(skip..skip + len)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_same_whichever_way_it_is_cut() {
        let whole = pattern(7, 0, 1000);
        assert_eq!(whole.len(), 1000);
        for (offset, len) in [(0, 1), (3, 17), (8, 8), (13, 500), (999, 1)] {
            assert_eq!(
                pattern(7, offset as u64, len),
                whole.slice(offset..offset + len),
                "offset {offset} len {len}"
            );
        }
        assert_ne!(pattern(8, 0, 64), whole.slice(0..64), "the seed matters");
    }

    #[tokio::test]
    async fn spooled_parts_read_back_as_one_file_and_digest_like_the_bytes() {
        let content = pattern(3, 0, 3 * CHUNK + 123);
        let parts: Vec<SpooledPart> = content
            .chunks(CHUNK + 7)
            .map(|chunk| SpooledPart::write(chunk).unwrap())
            .collect();
        let spooled = FileBody::Spooled {
            parts: Arc::new(parts),
        };
        assert_eq!(spooled.len(), content.len() as u64);
        assert_eq!(spooled.to_bytes(), content);
        let in_memory = FileBody::Bytes(content.clone());
        assert_eq!(
            spooled.digest().await.unwrap(),
            in_memory.digest().await.unwrap()
        );
        let generated = FileBody::Pattern {
            len: content.len() as u64,
            seed: 3,
        };
        assert_eq!(
            generated.digest().await.unwrap(),
            in_memory.digest().await.unwrap()
        );
    }

    /// Over HTTP: a generated 20 MiB source file streams out with its length, and uploaded
    /// to the target in parts it is kept on disk and reads back identical.
    #[tokio::test]
    async fn a_generated_file_downloads_and_uploads_in_parts_unchanged() {
        use crate::fixture::sample_org;
        use crate::portal::{Portal, PortalSpec, Upload};
        use crate::sim::{SimOptions, SimServer};

        let source = SimServer::start(sample_org::source(), SimOptions::default())
            .await
            .unwrap();
        let target = SimServer::start(sample_org::target(), SimOptions::default())
            .await
            .unwrap();
        let len = 20 * 1024 * 1024 + 5;
        let id = source
            .add_generated_file("admin", "Big", "CSV", "big.csv", len, 9)
            .unwrap();
        let spec = |url: &str, label: &str| PortalSpec {
            label: label.into(),
            url: url.parse().unwrap(),
            username: "admin".into(),
            password: crate::secret::Secret::new("admin-sample-pw"),
            rate_limit_rps: None,
            ca_file: None,
            accept_invalid_certs: false,
            request_timeout: std::time::Duration::from_secs(30),
            token_minutes: 60,
        };
        let from = Portal::connect(spec(source.url(), "source")).await.unwrap();
        let to = Portal::connect(spec(target.url(), "target")).await.unwrap();
        let download = from.item_data(&id).await.unwrap().unwrap();
        assert_eq!(
            download.content_length(),
            Some(len),
            "the length is announced"
        );
        let upload = Upload::Stream {
            file_name: "big.csv".into(),
            length: len,
            download,
        };
        let params = [("title", "Big".to_string()), ("type", "CSV".to_string())];
        let copy = to
            .add_item("admin", None, &params, Some(upload), None, None)
            .await
            .unwrap();
        let expected = FileBody::Pattern { len, seed: 9 }.digest().await.unwrap();
        let digests = target.file_digests().await.unwrap();
        let (_, got_len, got_sha) = digests.iter().find(|(item, ..)| *item == copy).unwrap();
        assert_eq!((*got_len, got_sha.clone()), expected);
        let stats = target.stats();
        assert!(
            stats.outcome_total("ok") > 3
                && stats.by_endpoint.keys().any(|e| e.contains("addPart")),
            "the file went up in parts: {stats:?}"
        );
    }

    #[test]
    fn small_uploads_are_joined_in_memory() {
        let parts = vec![
            SpooledPart::write(b"hello ").unwrap(),
            SpooledPart::write(b"world").unwrap(),
        ];
        match FileBody::from_parts(parts).unwrap() {
            FileBody::Bytes(bytes) => assert_eq!(&bytes[..], b"hello world"),
            other => panic!("expected bytes, got {other:?}"),
        }
    }
}
