//! TCP framing (RFC 1035 §4.2.2 / RFC 7766): a 16-bit length, then the message.

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};

/// Reads one frame; `Ok(None)` on a clean EOF before a new frame.
pub(crate) async fn read_frame<S: AsyncReadRent>(
    stream: &mut S,
) -> std::io::Result<Option<Vec<u8>>> {
    let len = Vec::with_capacity(2);
    let (res, len) = stream.read_exact(len.slice_mut(0..2)).await;
    match res {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = len.into_inner();
    // read_exact filled both bytes; a shorter buffer would be a runtime bug.
    let Some(prefix) = len.first_chunk::<2>() else {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    };
    let n = usize::from(u16::from_be_bytes(*prefix));
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    let body = Vec::with_capacity(n);
    let (res, body) = stream.read_exact(body.slice_mut(0..n)).await;
    res?;
    Ok(Some(body.into_inner()))
}

/// Writes `msg` as one frame (one write: length and message together).
pub(crate) async fn write_frame<S: AsyncWriteRent>(
    stream: &mut S,
    msg: Vec<u8>,
) -> std::io::Result<()> {
    let len =
        u16::try_from(msg.len()).map_err(|_| std::io::Error::other("message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&msg);
    let (res, _) = stream.write_all(framed).await;
    res.map(|_| ())
}
