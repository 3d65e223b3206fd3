//! One hospital chain in process: a cw-multi-test `App` with its own bech32 prefix, the
//! registry and exchange contracts deployed and wired, and helpers that drive them as peers.

use super::ibc_module::{Outbox, RecordingIbc};
use super::peer::{TestClinician, TestPeer};
use cosmwasm_std::testing::MockStorage;
use cosmwasm_std::{
    to_json_binary, Addr, DepsMut, Empty, Env, IbcBasicResponse, Response, StdError,
};
use cw_multi_test::{
    App, AppBuilder, AppResponse, BankKeeper, ContractWrapper, DistributionKeeper, Executor,
    FailingModule, GovFailingModule, MockApiBech32, StakeKeeper, StargateFailing, WasmKeeper,
};
use ehr_protocol::audit::AuditEntry;
use ehr_protocol::exchange::{
    self as xmsg, IncomingRequest, OutgoingRequest, PurposeOfUse, RetrievedReply, StoreRecordMsg,
    SubmitReplyMsg, SubmitRequestMsg,
};
use ehr_protocol::packet::ExchangePacket;
use ehr_protocol::registry::{
    self as rmsg, AuditLogResponse, Partner, PartnerInput, PartnerStatus, Peer, Policy, Role,
};
use exchange::ContractError;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

pub type TestApp = App<
    BankKeeper,
    MockApiBech32,
    MockStorage,
    FailingModule<Empty, Empty, Empty>,
    WasmKeeper<Empty, Empty>,
    StakeKeeper,
    DistributionKeeper,
    RecordingIbc,
    GovFailingModule,
    StargateFailing,
>;

/// cw-multi-test has no IBC entry points: the relayer reaches them through `sudo`.
#[derive(Serialize, Deserialize)]
pub enum IbcEntry {
    Open(cosmwasm_std::IbcChannelOpenMsg),
    Connect(cosmwasm_std::IbcChannelConnectMsg),
    Close(cosmwasm_std::IbcChannelCloseMsg),
    Receive(cosmwasm_std::IbcPacketReceiveMsg),
    Ack(cosmwasm_std::IbcPacketAckMsg),
    Timeout(cosmwasm_std::IbcPacketTimeoutMsg),
}

fn basic(response: IbcBasicResponse) -> Response {
    Response::new()
        .add_submessages(response.messages)
        .add_attributes(response.attributes)
        .add_events(response.events)
}

/// Forwards to the exchange's real IBC entry points. The receive ack and the negotiated
/// channel version travel back in the response data.
fn ibc_sudo(deps: DepsMut, env: Env, entry: IbcEntry) -> Result<Response, ContractError> {
    use exchange::ibc;
    Ok(match entry {
        IbcEntry::Open(msg) => {
            let opened = ibc::ibc_channel_open(deps, env, msg)?;
            Response::new().set_data(to_json_binary(&opened.map(|o| o.version))?)
        }
        IbcEntry::Connect(msg) => basic(ibc::ibc_channel_connect(deps, env, msg)?),
        IbcEntry::Close(msg) => basic(ibc::ibc_channel_close(deps, env, msg)?),
        IbcEntry::Receive(msg) => {
            let Ok(received) = ibc::ibc_packet_receive(deps, env, msg);
            let mut response = Response::new()
                .add_submessages(received.messages)
                .add_attributes(received.attributes)
                .add_events(received.events);
            if let Some(ack) = received.acknowledgement {
                response = response.set_data(ack);
            }
            response
        }
        IbcEntry::Ack(msg) => {
            let Ok(done) = ibc::ibc_packet_ack(deps, env, msg);
            basic(done)
        }
        IbcEntry::Timeout(msg) => {
            let Ok(done) = ibc::ibc_packet_timeout(deps, env, msg);
            basic(done)
        }
    })
}

/// What became of a peer's transaction.
#[derive(Debug)]
pub enum ExchangeResult {
    Accepted(AppResponse),
    /// Transaction succeeded, nothing applied: the contract's reason code.
    SoftRejected {
        reason: String,
        response: AppResponse,
    },
    /// Transaction failed (reverted): the error text.
    Failed(String),
}

impl ExchangeResult {
    fn from(result: Result<AppResponse, StdError>) -> Self {
        match result {
            Err(err) => ExchangeResult::Failed(err.to_string()),
            Ok(response) => match wasm_attr(&response, "outcome").as_deref() {
                Some("rejected") => ExchangeResult::SoftRejected {
                    reason: wasm_attr(&response, "reason").unwrap_or_default(),
                    response,
                },
                _ => ExchangeResult::Accepted(response),
            },
        }
    }

    pub fn accepted(self) -> AppResponse {
        match self {
            ExchangeResult::Accepted(response) => response,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    /// The soft-rejection reason code; panics on anything else.
    pub fn rejection(&self) -> &str {
        match self {
            ExchangeResult::SoftRejected { reason, .. } => reason,
            other => panic!("expected a soft rejection, got {other:?}"),
        }
    }

    pub fn failure(&self) -> &str {
        match self {
            ExchangeResult::Failed(text) => text,
            other => panic!("expected a failed transaction, got {other:?}"),
        }
    }
}

/// First value of a `wasm` event attribute.
pub fn wasm_attr(response: &AppResponse, key: &str) -> Option<String> {
    response
        .events
        .iter()
        .filter(|e| e.ty == "wasm")
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
}

pub struct Chain {
    pub app: TestApp,
    pub network_id: String,
    pub admin: Addr,
    pub registry: Addr,
    pub exchange: Addr,
    pub outbox: Rc<RefCell<Outbox>>,
    pub next_channel: u64,
    pub next_connection: u64,
    /// Every event of every transaction and relayed IBC call (the privacy scan reads it).
    pub events: Vec<cosmwasm_std::Event>,
    /// Every packet delivered to this chain, as its blocks keep them (`recv_packet`).
    pub received: Vec<cosmwasm_std::IbcPacket>,
    /// The clinician every test chain registers ("dr-adams", every purpose).
    pub clinician: TestClinician,
}

/// Every purpose of use: the default clinician may ask for any, so tests reach the checks
/// after the clinician's.
pub const ALL_PURPOSES: [PurposeOfUse; 4] = [
    PurposeOfUse::Treatment,
    PurposeOfUse::EmergencyTreatment,
    PurposeOfUse::Payment,
    PurposeOfUse::Operations,
];

impl Chain {
    pub fn new(prefix: &'static str, network_id: &str) -> Self {
        Self::with_policy(prefix, network_id, Policy::default())
    }

    pub fn with_policy(prefix: &'static str, network_id: &str, policy: Policy) -> Self {
        let ibc = RecordingIbc::default();
        let outbox = ibc.outbox.clone();
        let mut app: TestApp = AppBuilder::new()
            .with_api(MockApiBech32::new(prefix))
            .with_ibc(ibc)
            .build(|_, _, _| {});
        let admin = app.api().addr_make("admin");
        let registry_code = app.store_code(Box::new(ContractWrapper::new(
            registry::contract::execute,
            registry::contract::instantiate,
            registry::contract::query,
        )));
        let exchange_code = app.store_code(Box::new(
            ContractWrapper::new(
                exchange::contract::execute,
                exchange::contract::instantiate,
                exchange::contract::query,
            )
            .with_sudo(ibc_sudo),
        ));
        let registry = app
            .instantiate_contract(
                registry_code,
                admin.clone(),
                &rmsg::InstantiateMsg {
                    admin: None,
                    network_id: network_id.to_string(),
                    policy: Some(policy),
                },
                &[],
                "registry",
                Some(admin.to_string()),
            )
            .expect("instantiate registry");
        let exchange = app
            .instantiate_contract(
                exchange_code,
                admin.clone(),
                &xmsg::InstantiateMsg {
                    registry: registry.to_string(),
                },
                &[],
                "exchange",
                Some(admin.to_string()),
            )
            .expect("instantiate exchange");
        let mut chain = Chain {
            app,
            network_id: network_id.to_string(),
            admin,
            registry,
            exchange,
            outbox,
            next_channel: 0,
            next_connection: 0,
            events: Vec::new(),
            received: Vec::new(),
            clinician: TestClinician::new("unregistered"),
        };
        chain
            .admin_exec(&rmsg::ExecuteMsg::SetExchange {
                exchange: chain.exchange.to_string(),
            })
            .expect("set exchange");
        chain.clinician = chain.add_clinician("dr-adams", &ALL_PURPOSES);
        chain
    }

    /// Registers a clinician with a fresh key and the given purposes.
    pub fn add_clinician(&mut self, id: &str, purposes: &[PurposeOfUse]) -> TestClinician {
        let clinician = TestClinician::new(id);
        self.admin_exec(&rmsg::ExecuteMsg::RegisterClinician {
            clinician: clinician.input(purposes),
        })
        .expect("register clinician");
        clinician
    }

    /// Registers a clinician whose credential allows break-glass (emergency) requests.
    pub fn add_break_glass_clinician(&mut self, id: &str) -> TestClinician {
        let clinician = TestClinician::new(id);
        let mut input = clinician.input(&ALL_PURPOSES);
        input.break_glass = true;
        self.admin_exec(&rmsg::ExecuteMsg::RegisterClinician { clinician: input })
            .expect("register clinician");
        clinician
    }

    /// Sends any exchange message as `sender`.
    pub fn execute(&mut self, sender: &Addr, msg: &xmsg::ExecuteMsg) -> ExchangeResult {
        self.exec(sender, msg)
    }

    pub fn port(&self) -> String {
        format!("wasm.{}", self.exchange)
    }

    pub fn addr(&self, name: &str) -> Addr {
        self.app.api().addr_make(name)
    }

    pub fn now(&self) -> u64 {
        self.app.block_info().time.seconds()
    }

    /// Moves block time forward (and height by one block per 5 s).
    pub fn advance(&mut self, secs: u64) {
        self.app.update_block(|block| {
            block.time = block.time.plus_seconds(secs);
            block.height += secs / 5 + 1;
        });
    }

    pub fn admin_exec(&mut self, msg: &rmsg::ExecuteMsg) -> Result<AppResponse, StdError> {
        self.app
            .execute_contract(self.admin.clone(), self.registry.clone(), msg, &[])
    }

    /// Registers a new peer with fresh keys.
    pub fn add_peer(&mut self, name: &str, roles: &[Role]) -> TestPeer {
        let peer = TestPeer::new(self.addr(name), roles);
        self.admin_exec(&rmsg::ExecuteMsg::RegisterPeer {
            peer: peer.peer_input(),
        })
        .expect("register peer");
        peer
    }

    /// A key holder the registry has never heard of.
    pub fn outsider(&self, name: &str) -> TestPeer {
        TestPeer::new(self.addr(name), &[Role::Store, Role::Request, Role::Reply])
    }

    pub fn add_partner(&mut self, partner_id: &str, connection_id: &str, counterparty_port: &str) {
        self.admin_exec(&rmsg::ExecuteMsg::UpsertPartner {
            partner: PartnerInput {
                partner_id: partner_id.to_string(),
                connection_id: connection_id.to_string(),
                counterparty_port: counterparty_port.to_string(),
                encryption_key: None,
                status: PartnerStatus::Active,
                accepted_purposes: ehr_protocol::registry::default_accepted_purposes(),
            },
        })
        .expect("upsert partner");
    }

    /// The admin sets a registered partner's status (e.g. suspends it), keeping the rest of
    /// its entry.
    pub fn set_partner_status(&mut self, partner_id: &str, status: PartnerStatus) {
        let partner = self.partner(partner_id).expect("a registered partner");
        self.admin_exec(&rmsg::ExecuteMsg::UpsertPartner {
            partner: PartnerInput {
                partner_id: partner.partner_id,
                connection_id: partner.connection_id,
                counterparty_port: partner.counterparty_port,
                encryption_key: partner.encryption_key,
                status,
                accepted_purposes: partner.accepted_purposes,
            },
        })
        .expect("upsert partner");
    }

    fn exec(&mut self, sender: &Addr, msg: &xmsg::ExecuteMsg) -> ExchangeResult {
        let result = self
            .app
            .execute_contract(sender.clone(), self.exchange.clone(), msg, &[]);
        if let Ok(response) = &result {
            self.events.extend(response.events.iter().cloned());
        }
        ExchangeResult::from(result)
    }

    pub fn store(&mut self, peer: &TestPeer, msg: StoreRecordMsg) -> ExchangeResult {
        self.exec(&peer.address, &xmsg::ExecuteMsg::StoreRecord(msg))
    }

    pub fn store_chunks(&mut self, peer: &TestPeer, msg: xmsg::StoreChunksMsg) -> ExchangeResult {
        self.exec(&peer.address, &xmsg::ExecuteMsg::StoreChunks(msg))
    }

    pub fn submit_reply_chunks(
        &mut self,
        peer: &TestPeer,
        msg: xmsg::SubmitReplyChunksMsg,
    ) -> ExchangeResult {
        self.exec(&peer.address, &xmsg::ExecuteMsg::SubmitReplyChunks(msg))
    }

    pub fn submit_request(&mut self, peer: &TestPeer, msg: SubmitRequestMsg) -> ExchangeResult {
        self.exec(&peer.address, &xmsg::ExecuteMsg::SubmitRequest(msg))
    }

    pub fn submit_reply(&mut self, peer: &TestPeer, msg: SubmitReplyMsg) -> ExchangeResult {
        self.exec(&peer.address, &xmsg::ExecuteMsg::SubmitReply(msg))
    }

    pub fn retrieve(&mut self, peer: &TestPeer, request_id: &str) -> ExchangeResult {
        self.exec(
            &peer.address,
            &xmsg::ExecuteMsg::RetrieveReply {
                request_id: request_id.to_string(),
            },
        )
    }

    /// `Sweep` sent by `sender` (anyone may).
    pub fn sweep(&mut self, sender: &Addr, limit: Option<u32>) -> AppResponse {
        self.exec(sender, &xmsg::ExecuteMsg::Sweep { limit })
            .accepted()
    }

    /// The reply released to the requester in a retrieval's response data.
    pub fn retrieved_reply(response: &AppResponse) -> RetrievedReply {
        cosmwasm_std::from_json(response.data.as_ref().expect("retrieval data"))
            .expect("RetrievedReply JSON")
    }

    /// Every chunk of a stored record, `None` when there is no such record.
    pub fn record_chunks(&self, patient_token: &str, record_id: &str) -> Option<Vec<Vec<u8>>> {
        let record: xmsg::StoredRecord = self
            .query_exchange(&xmsg::QueryMsg::Record {
                patient_token: patient_token.to_string(),
                record_id: record_id.to_string(),
            })
            .ok()?;
        (0..record.manifest.chunk_count())
            .map(|index| {
                self.query_exchange::<cosmwasm_std::Binary>(&xmsg::QueryMsg::RecordChunk {
                    patient_token: patient_token.to_string(),
                    record_id: record_id.to_string(),
                    index,
                })
                .ok()
                .map(|chunk| chunk.to_vec())
            })
            .collect()
    }

    /// The chunks of a retrieved reply, read as its requester reads them: from the packets
    /// each came in (`chunk_packets`), which the chain does not copy into its state.
    pub fn reply_chunks(&self, reply: &RetrievedReply) -> Vec<Vec<u8>> {
        assert_eq!(
            reply.chunk_packets.len(),
            reply.manifest.chunk_count() as usize,
            "RetrieveReply names each chunk's packet"
        );
        reply
            .chunk_packets
            .iter()
            .enumerate()
            .map(|(index, &sequence)| {
                let data = self
                    .received_packet(&reply.channel_id, sequence)
                    .expect("the chunk's packet is in a block");
                let Ok(ExchangePacket::Reply(packet)) = cosmwasm_std::from_json(&data) else {
                    panic!("packet {sequence} is a reply");
                };
                assert_eq!(packet.chunk_index as usize, index);
                assert_eq!(packet.body.request_id, reply.request_id);
                packet.chunk.to_vec()
            })
            .collect()
    }

    pub fn query_exchange<T: serde::de::DeserializeOwned>(
        &self,
        msg: &xmsg::QueryMsg,
    ) -> Result<T, StdError> {
        self.app.wrap().query_wasm_smart(&self.exchange, msg)
    }

    pub fn query_registry<T: serde::de::DeserializeOwned>(
        &self,
        msg: &rmsg::QueryMsg,
    ) -> Result<T, StdError> {
        self.app.wrap().query_wasm_smart(&self.registry, msg)
    }

    pub fn request(&self, request_id: &str) -> OutgoingRequest {
        self.query_exchange(&xmsg::QueryMsg::Request {
            request_id: request_id.to_string(),
        })
        .expect("request query")
    }

    pub fn has_request(&self, request_id: &str) -> bool {
        self.query_exchange::<OutgoingRequest>(&xmsg::QueryMsg::Request {
            request_id: request_id.to_string(),
        })
        .is_ok()
    }

    pub fn incoming(&self, partner_id: &str, request_id: &str) -> Option<IncomingRequest> {
        self.query_exchange(&xmsg::QueryMsg::IncomingRequest {
            partner_id: partner_id.to_string(),
            request_id: request_id.to_string(),
        })
        .ok()
    }

    /// The data of the packet delivered as `sequence` on `channel` (this chain's end): what
    /// a node's `recv_packet` event gives.
    pub fn received_packet(&self, channel: &str, sequence: u64) -> Option<cosmwasm_std::Binary> {
        self.received
            .iter()
            .find(|p| p.dest.channel_id == channel && p.sequence == sequence)
            .map(|p| p.data.clone())
    }

    /// An incoming request with its sealed patient details, as the custodian's reply
    /// service reads them: from the packet, checked against the hash the chain kept.
    pub fn incoming_with_details(
        &self,
        partner_id: &str,
        request_id: &str,
    ) -> Option<IncomingRequest> {
        let mut incoming = self.incoming(partner_id, request_id)?;
        if let Some(hash) = &incoming.sealed_patient_sha256 {
            let data = self.received_packet(&incoming.channel_id, incoming.packet_sequence)?;
            let Ok(ExchangePacket::Request(packet)) = cosmwasm_std::from_json(&data) else {
                return None;
            };
            assert_eq!(
                &ehr_protocol::signing::sha256_hex(&packet.body.sealed_patient),
                hash
            );
            incoming.body.sealed_patient = packet.body.sealed_patient;
        }
        Some(incoming)
    }

    pub fn pending_incoming(&self) -> Vec<IncomingRequest> {
        self.query_exchange::<xmsg::IncomingRequestsResponse>(&xmsg::QueryMsg::PendingIncoming {
            start_after: None,
            limit: Some(100),
        })
        .expect("pending incoming")
        .requests
    }

    pub fn record_count(&self, patient_token: &str) -> usize {
        self.query_exchange::<xmsg::RecordsResponse>(&xmsg::QueryMsg::Records {
            patient_token: patient_token.to_string(),
            start_after: None,
            limit: Some(100),
        })
        .expect("records query")
        .records
        .len()
    }

    pub fn peer(&self, address: &Addr) -> Option<Peer> {
        self.query_registry(&rmsg::QueryMsg::Peer {
            address: address.to_string(),
        })
        .expect("peer query")
    }

    pub fn partner(&self, partner_id: &str) -> Option<Partner> {
        self.query_registry(&rmsg::QueryMsg::Partner {
            partner_id: partner_id.to_string(),
        })
        .expect("partner query")
    }

    /// The whole exchange audit log, paging through it.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.page_audit(
            |start_after| xmsg::QueryMsg::AuditLog {
                start_after,
                limit: Some(100),
            },
            &self.exchange,
        )
    }

    pub fn registry_audit(&self) -> Vec<AuditEntry> {
        self.page_audit(
            |start_after| rmsg::QueryMsg::AuditLog {
                start_after,
                limit: Some(100),
            },
            &self.registry,
        )
    }

    fn page_audit<Q: Serialize>(
        &self,
        query: impl Fn(Option<u64>) -> Q,
        contract: &Addr,
    ) -> Vec<AuditEntry> {
        let mut all = Vec::new();
        loop {
            let page: AuditLogResponse = self
                .app
                .wrap()
                .query_wasm_smart(contract, &query(all.last().map(|e: &AuditEntry| e.id)))
                .expect("audit query");
            if page.entries.is_empty() {
                return all;
            }
            all.extend(page.entries);
        }
    }

    /// Every key and value in every contract's storage, for the privacy scan.
    pub fn dump_state(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for contract in [&self.registry, &self.exchange] {
            for (key, value) in self.app.dump_wasm_raw(contract) {
                out.extend(key);
                out.extend(value);
            }
        }
        out
    }
}
