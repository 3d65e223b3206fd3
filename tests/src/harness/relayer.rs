//! A test relayer: opens channels through the exchange contracts' handshake entry points and
//! moves committed packets, their acknowledgements and timeouts between in-process chains,
//! as Hermes does between real ones.

use super::chain::{Chain, IbcEntry};
use super::ibc_module::SentPacket;
use cosmwasm_std::{
    from_json, Binary, IbcAcknowledgement, IbcChannel, IbcChannelConnectMsg, IbcChannelOpenMsg,
    IbcEndpoint, IbcOrder, IbcPacket, IbcPacketAckMsg, IbcPacketReceiveMsg, IbcPacketTimeoutMsg,
    IbcTimeout, StdAck,
};
use ehr_protocol::limits::CHANNEL_VERSION;

/// One direction of an open channel: packets go from `src` (on the sending chain) to `dst`.
#[derive(Clone, Debug)]
pub struct Link {
    pub src: IbcEndpoint,
    pub dst: IbcEndpoint,
    pub src_connection: String,
    pub dst_connection: String,
}

impl Link {
    pub fn reverse(&self) -> Link {
        Link {
            src: self.dst.clone(),
            dst: self.src.clone(),
            src_connection: self.dst_connection.clone(),
            dst_connection: self.src_connection.clone(),
        }
    }
}

/// What the relayer saw when it delivered one packet.
#[derive(Debug)]
pub struct Delivery {
    pub sequence: u64,
    pub ack: StdAck,
}

pub struct Relayer;

fn endpoint(port: String, channel_id: String) -> IbcEndpoint {
    IbcEndpoint {
        port_id: port,
        channel_id,
    }
}

impl Relayer {
    /// A light-client connection between the chains: returns (connection on a, on b).
    pub fn connect(a: &mut Chain, b: &mut Chain) -> (String, String) {
        let ids = (
            format!("connection-{}", a.next_connection),
            format!("connection-{}", b.next_connection),
        );
        a.next_connection += 1;
        b.next_connection += 1;
        ids
    }

    /// Runs the four-step handshake between the two exchange contracts. The first refusal
    /// ends it with the refusing side's error.
    pub fn open_channel(
        a: &mut Chain,
        b: &mut Chain,
        connections: &(String, String),
        order: IbcOrder,
        version: &str,
    ) -> Result<Link, String> {
        Self::open_channel_from(a, a.port(), b, connections, order, version)
    }

    /// As `open_channel`, with an arbitrary initiating port on `a` (e.g. an unregistered
    /// contract's port) in place of its exchange's.
    pub fn open_channel_from(
        a: &mut Chain,
        a_port: String,
        b: &mut Chain,
        connections: &(String, String),
        order: IbcOrder,
        version: &str,
    ) -> Result<Link, String> {
        let link = Link {
            src: endpoint(a_port, format!("channel-{}", a.next_channel)),
            dst: endpoint(b.port(), format!("channel-{}", b.next_channel)),
            src_connection: connections.0.clone(),
            dst_connection: connections.1.clone(),
        };
        let a_channel = |version: &str| {
            IbcChannel::new(
                link.src.clone(),
                link.dst.clone(),
                order.clone(),
                version,
                link.src_connection.clone(),
            )
        };
        let b_channel = |version: &str| {
            IbcChannel::new(
                link.dst.clone(),
                link.src.clone(),
                order.clone(),
                version,
                link.dst_connection.clone(),
            )
        };
        let a_is_exchange = link.src.port_id == a.port();
        if a_is_exchange {
            sudo(
                a,
                IbcEntry::Open(IbcChannelOpenMsg::new_init(a_channel(version))),
            )?;
        }
        sudo(
            b,
            IbcEntry::Open(IbcChannelOpenMsg::new_try(b_channel(version), version)),
        )?;
        if a_is_exchange {
            sudo(
                a,
                IbcEntry::Connect(IbcChannelConnectMsg::new_ack(a_channel(version), version)),
            )?;
        }
        sudo(
            b,
            IbcEntry::Connect(IbcChannelConnectMsg::new_confirm(b_channel(version))),
        )?;
        a.next_channel += 1;
        b.next_channel += 1;
        Ok(link)
    }

    /// Delivers every packet `from` committed on `link.src` that has not timed out on `to`,
    /// then delivers each acknowledgement back to `from`.
    pub fn relay(from: &mut Chain, to: &mut Chain, link: &Link) -> Vec<Delivery> {
        let now = to.app.block_info().time;
        let ready: Vec<SentPacket> = {
            let mut outbox = from.outbox.borrow_mut();
            let (ready, rest) =
                std::mem::take(&mut outbox.packets)
                    .into_iter()
                    .partition(|p: &SentPacket| {
                        p.src_channel == link.src.channel_id
                            && p.timeout.timestamp().is_none_or(|t| now < t)
                    });
            outbox.packets = rest;
            ready
        };
        ready
            .into_iter()
            .map(|sent| {
                let packet = to_packet(&sent, link);
                let ack = Self::deliver(to, &packet);
                let relayer = from.addr("relayer");
                sudo(
                    from,
                    IbcEntry::Ack(IbcPacketAckMsg::new(
                        IbcAcknowledgement::new(ack.to_binary()),
                        packet,
                        relayer,
                    )),
                )
                .expect("ibc_packet_ack must never fail");
                Delivery {
                    sequence: sent.sequence,
                    ack,
                }
            })
            .collect()
    }

    /// Delivers one packet to `to`'s exchange and returns the acknowledgement it wrote.
    /// A failed receive becomes an error ack, as wasmd writes one.
    pub fn deliver(to: &mut Chain, packet: &IbcPacket) -> StdAck {
        to.received.push(packet.clone());
        let relayer = to.addr("relayer");
        match sudo(
            to,
            IbcEntry::Receive(IbcPacketReceiveMsg::new(packet.clone(), relayer)),
        ) {
            Ok(Some(data)) => from_json(&data).expect("acknowledgement is a StdAck"),
            Ok(None) => panic!("receive wrote no acknowledgement"),
            Err(_) => StdAck::error("ABCI code: 5: error handling packet: see events for details"),
        }
    }

    /// Delivers a packet crafted by the test (a forgery) as if it came over `link`.
    pub fn inject(
        to: &mut Chain,
        link: &Link,
        data: Binary,
        sequence: u64,
        timeout: IbcTimeout,
    ) -> StdAck {
        let packet = IbcPacket::new(data, link.src.clone(), link.dst.clone(), sequence, timeout);
        Self::deliver(to, &packet)
    }

    /// For every packet `from` sent on `link.src` whose timeout has passed on `to`, proves
    /// the timeout back to `from`. Returns how many timed out.
    pub fn time_out(from: &mut Chain, to: &Chain, link: &Link) -> usize {
        let now = to.app.block_info().time;
        let expired: Vec<SentPacket> = {
            let mut outbox = from.outbox.borrow_mut();
            let (expired, rest) =
                std::mem::take(&mut outbox.packets)
                    .into_iter()
                    .partition(|p: &SentPacket| {
                        p.src_channel == link.src.channel_id
                            && p.timeout.timestamp().is_some_and(|t| now >= t)
                    });
            outbox.packets = rest;
            expired
        };
        let count = expired.len();
        for sent in expired {
            let relayer = from.addr("relayer");
            sudo(
                from,
                IbcEntry::Timeout(IbcPacketTimeoutMsg::new(to_packet(&sent, link), relayer)),
            )
            .expect("ibc_packet_timeout must never fail");
        }
        count
    }

    /// Packets committed but not yet relayed on `link.src`.
    pub fn pending(from: &Chain, link: &Link) -> Vec<SentPacket> {
        from.outbox
            .borrow()
            .packets
            .iter()
            .filter(|p| p.src_channel == link.src.channel_id)
            .cloned()
            .collect()
    }
}

fn to_packet(sent: &SentPacket, link: &Link) -> IbcPacket {
    IbcPacket::new(
        sent.data.clone(),
        link.src.clone(),
        link.dst.clone(),
        sent.sequence,
        sent.timeout.clone(),
    )
}

fn sudo(chain: &mut Chain, entry: IbcEntry) -> Result<Option<Binary>, String> {
    let response = chain
        .app
        .wasm_sudo(chain.exchange.clone(), &entry)
        .map_err(|err| err.to_string())?;
    chain.events.extend(response.events.iter().cloned());
    Ok(response.data)
}

/// The channel version the contracts expect, for tests that open well-formed channels.
pub const VERSION: &str = CHANNEL_VERSION;
