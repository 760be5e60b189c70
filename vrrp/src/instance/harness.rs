//! A virtual-time network of instances for the state machine tests (quinn-proto's pair harness,
//! for VRRP): every advert is emitted to bytes and delivered through `handle_packet` to each
//! other live node, and time jumps from one deadline to the next.

use std::net::IpAddr;

use super::{Event, Instance, Transmit};
use crate::config::Config;
use crate::drops::DropReason;
use crate::time::Instant;
use crate::wire::RxMeta;

pub(crate) struct Node {
    pub inst: Instance,
    pub addr: IpAddr,
    /// A crashed node neither sends, receives nor times out.
    pub up: bool,
    pub events: Vec<(Instant, Event)>,
    pub sent: Vec<(Instant, Transmit)>,
    pub drops: Vec<(Instant, DropReason)>,
}

pub(crate) struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    /// While true, adverts are sent but reach nobody.
    pub partitioned: bool,
}

impl Net {
    /// Nodes for `configs`, not started.
    pub fn new(configs: Vec<Config>) -> Net {
        let nodes = configs
            .into_iter()
            .map(|c| Node {
                addr: c.primary_addr,
                inst: Instance::new(c).unwrap(),
                up: true,
                events: Vec::new(),
                sent: Vec::new(),
                drops: Vec::new(),
            })
            .collect();
        Net {
            now: Instant::ZERO,
            nodes,
            partitioned: false,
        }
    }

    /// Nodes for `configs`, all started at time zero.
    pub fn started(configs: Vec<Config>) -> Net {
        let mut net = Net::new(configs);
        for i in 0..net.nodes.len() {
            net.start(i);
        }
        net
    }

    pub fn start(&mut self, i: usize) {
        self.nodes[i].inst.startup(self.now);
        self.flush();
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    /// Delivers raw bytes to node `i` from `src` with TTL `ttl`, as its socket would.
    pub fn inject(
        &mut self,
        i: usize,
        src: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let dst = self.nodes[i]
            .inst
            .config()
            .virtual_addrs
            .family()
            .multicast_group();
        let rx = RxMeta { ttl, src, dst };
        let r = self.nodes[i].inst.handle_packet(self.now, &rx, bytes);
        self.flush();
        r
    }

    /// Delivers every queued advert and records every event until nothing is left.
    pub fn flush(&mut self) {
        let mut busy = true;
        while busy {
            busy = false;
            for i in 0..self.nodes.len() {
                while let Some(tx) = self.nodes[i].inst.poll_transmit() {
                    busy = true;
                    self.deliver(i, &tx);
                    self.nodes[i].sent.push((self.now, tx));
                }
                while let Some(e) = self.nodes[i].inst.poll_event() {
                    busy = true;
                    self.nodes[i].events.push((self.now, e));
                }
            }
        }
    }

    fn deliver(&mut self, from: usize, tx: &Transmit) {
        if !self.nodes[from].up || self.partitioned {
            return;
        }
        let src = self.nodes[from].addr;
        let dst = tx.multicast_dst();
        let mut buf = [0u8; 1100];
        let len = tx.emit(&mut buf, src, dst).unwrap();
        let rx = RxMeta { ttl: 255, src, dst };
        let now = self.now;
        for (j, node) in self.nodes.iter_mut().enumerate() {
            if j != from && node.up {
                if let Err(reason) = node.inst.handle_packet(now, &rx, &buf[..len]) {
                    node.drops.push((now, reason));
                }
            }
        }
    }

    /// Runs every deadline up to and including `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Instant) {
        loop {
            self.flush();
            let next = self
                .nodes
                .iter()
                .filter(|n| n.up)
                .filter_map(|n| n.inst.poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for node in self.nodes.iter_mut().filter(|n| n.up) {
                        if node.inst.poll_timeout().is_some_and(|t| t <= now) {
                            node.inst.handle_timeout(now);
                        }
                    }
                }
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
        }
    }
}
