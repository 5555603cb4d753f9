//! An incremental decoder for `Transfer-Encoding: chunked` bodies that checks the decoded
//! size against the limit as the chunks arrive: a chunk that would pass it is refused from
//! its size line, before its data is read. Lines (sizes, extensions, trailers) are capped.
//!
//! Pure: bytes in, bytes out, so it can be fuzzed.

/// Longest chunk-size line or trailer line, extensions included.
const MAX_LINE: usize = 4096;
/// Most trailer bytes in all.
const MAX_TRAILERS: usize = 8192;

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunked body")]
    Malformed,
    #[error("chunked body too large")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size line.
    Size {
        digits: usize,
    },
    /// In the extension of a size line (ignored).
    Extension,
    /// Saw the CR of a size line.
    SizeLf,
    /// Reading chunk data, this many bytes left.
    Data(usize),
    /// After chunk data: expecting CR, then LF.
    DataCr,
    DataLf,
    /// In a trailer line (after the last chunk); `empty` while nothing is on it yet.
    Trailer {
        empty: bool,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// The decoder's state between calls to [`Chunked::feed`].
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: usize,
    line: usize,
    trailers: usize,
    decoded: usize,
    limit: usize,
}

impl Chunked {
    /// A decoder that refuses more than `limit` decoded bytes.
    pub fn new(limit: usize) -> Chunked {
        Chunked {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
            trailers: 0,
            decoded: 0,
            limit,
        }
    }

    /// Whether the last chunk and its trailers have been read.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input` into `out`; returns how many input bytes it used
    /// (fewer than given only once done: the rest belongs to the next request).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data(left) => {
                    let take = left.min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data(left - take)
                    };
                    continue;
                }
                State::Size { digits } => {
                    self.bump_line()?;
                    if let Some(d) = hex(b) {
                        if digits >= 16 {
                            return Err(ChunkError::TooLarge);
                        }
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(d))
                            .ok_or(ChunkError::TooLarge)?;
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ChunkError::Malformed);
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::Extension;
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else {
                        return Err(ChunkError::Malformed);
                    }
                }
                State::Extension => {
                    self.bump_line()?;
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' {
                        return Err(ChunkError::Malformed);
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Malformed);
                    }
                    self.line = 0;
                    let size = std::mem::take(&mut self.size);
                    if size == 0 {
                        self.state = State::Trailer { empty: true };
                    } else {
                        self.decoded = self
                            .decoded
                            .checked_add(size)
                            .filter(|&d| d <= self.limit)
                            .ok_or(ChunkError::TooLarge)?;
                        self.state = State::Data(size);
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::Malformed);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Malformed);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::Trailer { empty } => {
                    self.bump_line()?;
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(ChunkError::TooLarge);
                    }
                    self.state = if b == b'\r' {
                        State::TrailerLf { empty }
                    } else if b == b'\n' {
                        return Err(ChunkError::Malformed);
                    } else {
                        State::Trailer { empty: false }
                    };
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(ChunkError::Malformed);
                    }
                    self.line = 0;
                    self.state = if empty {
                        State::Done
                    } else {
                        State::Trailer { empty: true }
                    };
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn bump_line(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_LINE {
            return Err(ChunkError::TooLarge);
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<usize> {
    char::from(b).to_digit(16).map(|d| d as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(
        input: &[u8],
        piece: usize,
        limit: usize,
    ) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = Chunked::new(limit);
        let mut out = Vec::new();
        let mut used = 0;
        for part in input.chunks(piece) {
            let n = d.feed(part, &mut out)?;
            used += n;
            if d.done() {
                return Ok((out, used));
            }
        }
        Err(ChunkError::Malformed)
    }

    #[test]
    fn decodes_in_any_split_and_leaves_what_follows() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1";
        for piece in 1..input.len() {
            let (out, used) = decode_in_pieces(input, piece, 100).expect("decodes");
            assert_eq!(out, b"hello world");
            assert_eq!(&input[used..], b"GET / HTTP/1.1", "piece {piece}");
        }
    }

    #[test]
    fn a_chunk_over_the_limit_is_refused_from_its_size_line() {
        let mut d = Chunked::new(10);
        let mut out = Vec::new();
        assert_eq!(d.feed(b"5\r\nhello\r\n", &mut out), Ok(10));
        assert_eq!(d.feed(b"6\r\n", &mut out), Err(ChunkError::TooLarge));
        let mut d = Chunked::new(usize::MAX);
        assert_eq!(
            d.feed(b"fffffffffffffffff\r\n", &mut out),
            Err(ChunkError::TooLarge)
        );
        let mut d = Chunked::new(usize::MAX);
        assert_eq!(
            d.feed(b"ffffffffffffffff\r\n1\r\n", &mut out).map(|_| ()),
            Ok(())
        );
    }

    #[test]
    fn malformed_and_endless_lines() {
        for bad in [&b"x\r\n"[..], b"5\r\nhelloX", b"5\n", b"\r\n"] {
            let mut d = Chunked::new(100);
            assert_eq!(
                d.feed(bad, &mut Vec::new()),
                Err(ChunkError::Malformed),
                "{bad:?}"
            );
        }
        let mut d = Chunked::new(100);
        let mut line = b"1;".to_vec();
        line.resize(MAX_LINE + 10, b'a');
        assert_eq!(d.feed(&line, &mut Vec::new()), Err(ChunkError::TooLarge));
    }
}
