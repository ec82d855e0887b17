//! `--preload`: every key stored before the run, in batches over one
//! blocking connection.
//!
//! Must not: run during the measured load, or count into the tally.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::codec::{Answer, Codec};
use crate::workload::Workload;

/// Requests per preload batch: well under the server's cap on replies
/// owed, so writing a batch before reading it cannot deadlock.
const PRELOAD_BATCH: usize = 512;

/// Stores every key, in batches, over one blocking connection.
pub fn preload(addr: SocketAddr, codec: Codec, workload: &Workload) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let (mut key, mut value, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut id = 0;
    while id < workload.keys {
        let batch_end = (id + PRELOAD_BATCH as u32).min(workload.keys);
        out.clear();
        for k in id..batch_end {
            workload.key(k, &mut key);
            workload.value(k, &mut value);
            codec.set(&key, &value, &mut out);
        }
        stream.write_all(&out)?;
        let mut answers = 0;
        while answers < (batch_end - id) as usize {
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
            if answers < (batch_end - id) as usize {
                let n = stream.read(&mut buf[filled..])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                filled += n;
            }
        }
        id = batch_end;
    }
    Ok(())
}
