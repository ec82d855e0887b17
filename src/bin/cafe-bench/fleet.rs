//! `--servers`: the nodes of a fleet and which node each key lives on,
//! by libmemcached's ketama ring (`cafe::client::ketama`), so the load
//! lands where twemproxy, libmemcached clients and `cafe::client::Cluster`
//! would send it. One server is a fleet of one.
//!
//! Must not: touch a socket, or hash on the hot path (each key's node is
//! looked up once, before the run).

use std::net::{SocketAddr, ToSocketAddrs};

use cafe::client::ketama::{Ring, parse_server, server_name};

use crate::args::Args;
use crate::workload::Workload;

#[derive(Debug, Clone)]
pub struct Fleet {
    pub addrs: Vec<SocketAddr>,
    /// Key id to node index; empty for a single server.
    placement: Vec<u16>,
}

fn resolve(spec: &str) -> Result<SocketAddr, String> {
    spec.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("{spec:?} is not a host:port"))
}

impl Fleet {
    /// `--server`, or `--servers` with every key of `workload` placed.
    pub fn new(args: &Args, workload: &Workload) -> Result<Fleet, String> {
        let Some(list) = &args.servers else {
            let addr = resolve(&args.server).map_err(|e| format!("--server {e}"))?;
            return Ok(Fleet {
                addrs: vec![addr],
                placement: Vec::new(),
            });
        };
        let specs: Vec<&str> = list.split(',').map(str::trim).collect();
        if specs.len() > usize::from(u16::MAX) {
            return Err("--servers lists more nodes than cafe-bench can place".into());
        }
        let mut addrs = Vec::with_capacity(specs.len());
        let mut names = Vec::with_capacity(specs.len());
        for spec in &specs {
            let (host, port) = parse_server(spec)
                .ok_or_else(|| format!("--servers: {spec:?} is not host:port"))?;
            addrs.push(resolve(&format!("{host}:{port}")).map_err(|e| format!("--servers {e}"))?);
            names.push(server_name(host, port));
        }
        let ring = Ring::new(&names);
        let mut key = Vec::new();
        let placement = (0..workload.keys)
            .map(|id| {
                workload.key(id, &mut key);
                // Every node is live: the ring always answers.
                ring.server_for(&key).unwrap_or(0) as u16
            })
            .collect();
        Ok(Fleet { addrs, placement })
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The node key `id` lives on.
    pub fn node(&self, id: u32) -> usize {
        self.placement
            .get(id as usize)
            .map_or(0, |&n| usize::from(n))
    }
}
