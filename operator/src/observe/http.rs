//! What every backend client shares: a bound on the size of an answer, read
//! without holding more than the bound (the declared Content-Length is checked
//! first, then the body is read chunk by chunk and dropped past the limit).

use std::fmt;

use bytes::Bytes;

/// A number of bytes, written as `16MiB`, `512KiB`, `1GiB` or plain bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The default bound on one backend answer.
    pub const DEFAULT_RESPONSE_LIMIT: ByteSize = ByteSize(16 << 20);
}

impl Default for ByteSize {
    fn default() -> Self {
        Self::DEFAULT_RESPONSE_LIMIT
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("must be a size such as 16MiB, 512KiB or 1048576, got {s:?}");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "Ki" => 1 << 10,
            "MiB" | "Mi" => 1 << 20,
            "GiB" | "Gi" => 1 << 30,
            "kB" | "KB" | "k" | "K" => 1_000,
            "MB" | "M" => 1_000_000,
            "GB" | "G" => 1_000_000_000,
            _ => return Err(bad()),
        };
        let v = n.checked_mul(scale).ok_or_else(bad)?;
        if v < 1024 {
            return Err(format!("must be at least 1KiB, got {s:?}"));
        }
        Ok(Self(v))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        for (scale, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
            if v >= scale && v.is_multiple_of(scale) {
                return write!(f, "{}{unit}", v / scale);
            }
        }
        write!(f, "{v}B")
    }
}

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Declared (Content-Length) or found to be larger than the limit.
    #[error("answer larger than the {limit} limit{} (--max-response-bytes)", declared.map(|d| format!(": it declares {d} bytes")).unwrap_or_default())]
    TooLarge {
        limit: ByteSize,
        declared: Option<u64>,
    },
    #[error("reading the answer failed: {0}")]
    Read(#[source] reqwest::Error),
}

/// An answer that is not the JSON expected, with how it begins.
#[derive(Debug, thiserror::Error)]
#[error("{source} (answer begins {begins:?})")]
pub struct DecodeError {
    #[source]
    pub source: serde_json::Error,
    pub begins: String,
}

/// An answer's body, as the chunks it arrived in: never copied into one
/// buffer, so that reading it holds no more than its size.
#[derive(Debug, Default)]
pub struct Body {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Body {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body as a reader, for `serde_json::from_reader`.
    pub fn reader(&self) -> impl std::io::Read + '_ {
        Chunks {
            rest: &self.chunks,
            at: 0,
        }
    }

    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_reader(std::io::BufReader::new(self.reader())).map_err(|source| {
            DecodeError {
                source,
                begins: self.excerpt(80),
            }
        })
    }

    /// At most `n` characters from the start of the body, for an error message.
    pub fn excerpt(&self, n: usize) -> String {
        let mut head = Vec::new();
        for c in &self.chunks {
            if head.len() >= 4 * n {
                break;
            }
            head.extend_from_slice(&c[..c.len().min(4 * n - head.len())]);
        }
        let mut out = excerpt(&head, n);
        if self.len > head.len() && !out.ends_with('…') {
            out.push('…');
        }
        out
    }
}

/// Reads chunk after chunk.
struct Chunks<'a> {
    rest: &'a [Bytes],
    /// Bytes of `rest[0]` already read.
    at: usize,
}

impl std::io::Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(first) = self.rest.first() {
            let left = &first[self.at..];
            if left.is_empty() {
                self.rest = &self.rest[1..];
                self.at = 0;
                continue;
            }
            let n = left.len().min(buf.len());
            buf[..n].copy_from_slice(&left[..n]);
            self.at += n;
            return Ok(n);
        }
        Ok(0)
    }
}

/// The whole body of `response`, if it is at most `limit` bytes. Never holds
/// more than `limit` bytes: a declared Content-Length over it is refused
/// before reading, and reading stops at the first chunk that would pass it
/// (the connection is dropped with the response).
pub async fn read_body(
    mut response: reqwest::Response,
    limit: ByteSize,
) -> Result<Body, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|d| d > limit.0) {
        return Err(BodyError::TooLarge { limit, declared });
    }
    let mut body = Body::default();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if (body.len + chunk.len()) as u64 > limit.0 {
            return Err(BodyError::TooLarge {
                limit,
                declared: None,
            });
        }
        body.len += chunk.len();
        body.chunks.push(chunk);
    }
    Ok(body)
}

/// At most `n` characters of a backend's text, for an error message.
pub fn excerpt(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4 * n)]);
    let mut out: String = text.chars().take(n).collect();
    if text.chars().nth(n).is_some() || bytes.len() > 4 * n {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        for (text, bytes, shown) in [
            ("16MiB", 16 << 20, "16MiB"),
            ("16Mi", 16 << 20, "16MiB"),
            ("512KiB", 512 << 10, "512KiB"),
            ("1GiB", 1 << 30, "1GiB"),
            ("2MB", 2_000_000, "2000000B"),
            ("4096", 4096, "4KiB"),
        ] {
            let v: ByteSize = text.parse().unwrap();
            assert_eq!(v.0, bytes, "{text}");
            assert_eq!(v.to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "MiB",
            "16 XB",
            "-1",
            "1.5MiB",
            "12",
            "99999999999999GiB",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
        assert_eq!(ByteSize::default().to_string(), "16MiB");
    }

    #[test]
    fn a_body_in_chunks_reads_as_one() {
        let body = Body {
            chunks: vec![
                Bytes::from_static(b"{\"a\": [1, "),
                Bytes::from_static(b"2]}"),
            ],
            len: 14,
        };
        let v: serde_json::Value = body.json().unwrap();
        assert_eq!(v["a"][1], 2);
        assert_eq!(body.excerpt(3), "{\"a…");
        let e = body.json::<Vec<u8>>().unwrap_err();
        assert!(e.to_string().contains("answer begins"), "{e}");
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(b"short", 10), "short");
        assert_eq!(excerpt(&[b'x'; 1000], 3), "xxx…");
    }
}
