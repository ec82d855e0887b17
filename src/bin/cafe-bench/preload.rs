//! `--preload`: every key stored before the run, in batches over one
//! blocking connection per node.
//!
//! Must not: run during the measured load, or count into the tally.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::codec::{Answer, Codec};
use crate::workload::Workload;

/// Requests per preload batch: well under the server's cap on replies
/// owed, so writing a batch before reading it cannot deadlock.
const PRELOAD_BATCH: usize = 512;

/// Stores every key that `keep` accepts (a node's share of a fleet), in
/// batches, over one blocking connection.
pub fn preload(
    addr: SocketAddr,
    codec: Codec,
    workload: &Workload,
    keep: impl Fn(u32) -> bool,
) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let (mut key, mut value, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let ids: Vec<u32> = (0..workload.keys).filter(|&id| keep(id)).collect();
    for batch in ids.chunks(PRELOAD_BATCH) {
        out.clear();
        for &k in batch {
            workload.key(k, &mut key);
            workload.value(k, &mut value);
            codec.set(&key, &value, &mut out);
        }
        stream.write_all(&out)?;
        let mut answers = 0;
        while answers < batch.len() {
            let mut start = 0;
            while let Some((answer, consumed)) = codec
                .decode(&buf[start..filled], false)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                if answer != Answer::Stored {
                    return Err(io::Error::other("preload: a SET was refused"));
                }
                start += consumed;
                answers += 1;
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            if answers < batch.len() {
                let n = stream.read(&mut buf[filled..])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                filled += n;
            }
        }
    }
    Ok(())
}
