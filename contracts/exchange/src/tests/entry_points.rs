use super::support::{setup, CHANNEL, CONNECTION, COUNTERPARTY_PORT};
use crate::contract::{execute, query};
use crate::ibc::{
    ibc_channel_close, ibc_channel_connect, ibc_channel_open, ibc_packet_ack, ibc_packet_receive,
    ibc_packet_timeout,
};
use cosmwasm_std::testing::{message_info, mock_env};
use cosmwasm_std::{
    from_json, Binary, IbcAcknowledgement, IbcChannel, IbcChannelCloseMsg, IbcChannelConnectMsg,
    IbcChannelOpenMsg, IbcEndpoint, IbcOrder, IbcPacket, IbcPacketAckMsg, IbcPacketReceiveMsg,
    IbcPacketTimeoutMsg, IbcTimeout, StdAck, Timestamp,
};
use ehr_protocol::exchange::{ConfigResponse, ExecuteMsg, QueryMsg};
use ehr_protocol::limits::CHANNEL_VERSION;

fn channel(
    order: IbcOrder,
    version: &str,
    connection: &str,
    counterparty_port: &str,
) -> IbcChannel {
    IbcChannel::new(
        IbcEndpoint {
            port_id: "wasm.ourexchange".into(),
            channel_id: CHANNEL.into(),
        },
        IbcEndpoint {
            port_id: counterparty_port.into(),
            channel_id: "channel-7".into(),
        },
        order,
        version,
        connection,
    )
}

fn good_channel() -> IbcChannel {
    channel(
        IbcOrder::Unordered,
        CHANNEL_VERSION,
        CONNECTION,
        COUNTERPARTY_PORT,
    )
}

#[test]
fn instantiate_copies_network_id_from_registry() {
    let deps = setup(false);
    let config: ConfigResponse =
        from_json(query(deps.as_ref(), mock_env(), QueryMsg::Config {}).unwrap()).unwrap();
    assert_eq!(config.network_id, "hospital-a");
}

#[test]
fn open_accepts_registered_partner_and_returns_our_version() {
    let mut deps = setup(false);
    let response = ibc_channel_open(
        deps.as_mut(),
        mock_env(),
        IbcChannelOpenMsg::new_init(channel(
            IbcOrder::Unordered,
            "",
            CONNECTION,
            COUNTERPARTY_PORT,
        )),
    )
    .unwrap();
    assert_eq!(response.unwrap().version, CHANNEL_VERSION);
}

#[test]
fn open_refuses_ordered_wrong_version_and_unknown_counterparty() {
    let mut deps = setup(false);
    let refusals = [
        (
            channel(
                IbcOrder::Ordered,
                CHANNEL_VERSION,
                CONNECTION,
                COUNTERPARTY_PORT,
            ),
            "unordered",
        ),
        (
            channel(
                IbcOrder::Unordered,
                "ics20-1",
                CONNECTION,
                COUNTERPARTY_PORT,
            ),
            "UnsupportedVersion",
        ),
        (
            channel(
                IbcOrder::Unordered,
                CHANNEL_VERSION,
                "connection-9",
                COUNTERPARTY_PORT,
            ),
            "UnknownPartner",
        ),
        (
            channel(
                IbcOrder::Unordered,
                CHANNEL_VERSION,
                CONNECTION,
                "wasm.rogue",
            ),
            "UnknownPartner",
        ),
    ];
    for (channel, expected) in refusals {
        let err = ibc_channel_open(
            deps.as_mut(),
            mock_env(),
            IbcChannelOpenMsg::new_init(channel),
        )
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = ibc_channel_open(
        deps.as_mut(),
        mock_env(),
        IbcChannelOpenMsg::new_try(good_channel(), "other-1"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("UnsupportedVersion"));
}

#[test]
fn connect_binds_the_channel_in_the_registry() {
    let mut deps = setup(false);
    let response = ibc_channel_connect(
        deps.as_mut(),
        mock_env(),
        IbcChannelConnectMsg::new_ack(good_channel(), CHANNEL_VERSION),
    )
    .unwrap();
    assert_eq!(
        response.messages.len(),
        1,
        "BindChannel message to the registry"
    );
    let err = ibc_channel_connect(
        deps.as_mut(),
        mock_env(),
        IbcChannelConnectMsg::new_ack(good_channel(), "v2"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("UnsupportedVersion"));
}

#[test]
fn close_init_is_refused_close_confirm_unbinds() {
    let mut deps = setup(true);
    assert!(ibc_channel_close(
        deps.as_mut(),
        mock_env(),
        IbcChannelCloseMsg::new_init(good_channel())
    )
    .is_err());
    let response = ibc_channel_close(
        deps.as_mut(),
        mock_env(),
        IbcChannelCloseMsg::new_confirm(good_channel()),
    )
    .unwrap();
    assert_eq!(response.messages.len(), 1);
}

fn packet(data: &[u8], channel: &str) -> IbcPacket {
    IbcPacket::new(
        Binary::from(data.to_vec()),
        IbcEndpoint {
            port_id: COUNTERPARTY_PORT.into(),
            channel_id: "channel-7".into(),
        },
        IbcEndpoint {
            port_id: "wasm.ourexchange".into(),
            channel_id: channel.into(),
        },
        3,
        IbcTimeout::with_timestamp(Timestamp::from_seconds(2_000_000_000)),
    )
}

fn receive_ack(deps: &mut super::support::Deps, data: &[u8], channel: &str) -> StdAck {
    let relayer = deps.api.addr_make("relayer");
    let Ok(response) = ibc_packet_receive(
        deps.as_mut(),
        mock_env(),
        IbcPacketReceiveMsg::new(packet(data, channel), relayer),
    );
    from_json(response.acknowledgement.expect("an ack is always written")).unwrap()
}

#[test]
fn receive_never_fails_and_answers_garbage_with_coded_error_ack() {
    let mut deps = setup(true);
    assert_eq!(
        receive_ack(&mut deps, b"\xff\x00", CHANNEL),
        StdAck::error("ehrx:InvalidFormat")
    );
    assert_eq!(
        receive_ack(&mut deps, b"{\"request\":{}}", CHANNEL),
        StdAck::error("ehrx:InvalidFormat")
    );
}

#[test]
fn ack_and_timeout_handlers_never_fail_on_unknown_packets() {
    let mut deps = setup(true);
    let relayer = deps.api.addr_make("relayer");
    let Ok(_) = ibc_packet_ack(
        deps.as_mut(),
        mock_env(),
        IbcPacketAckMsg::new(
            IbcAcknowledgement::new(b"???".to_vec()),
            packet(b"x", CHANNEL),
            relayer.clone(),
        ),
    );
    let Ok(response) = ibc_packet_timeout(
        deps.as_mut(),
        mock_env(),
        IbcPacketTimeoutMsg::new(packet(b"x", CHANNEL), relayer),
    );
    assert!(response
        .attributes
        .iter()
        .any(|a| a.value == "unknown_packet"));
}

#[test]
fn unregistered_sender_is_refused_with_a_trace_and_nothing_else() {
    let mut deps = setup(true);
    let stranger = deps.api.addr_make("stranger");
    let attempt = |deps: &mut super::support::Deps| {
        execute(
            deps.as_mut(),
            mock_env(),
            message_info(&stranger, &[]),
            ExecuteMsg::RetrieveReply {
                request_id: "req-0000000000000000".into(),
            },
        )
        .unwrap()
    };
    let response = attempt(&mut deps);
    let attr = |key: &str| {
        response
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr("outcome").as_deref(), Some("rejected"));
    assert_eq!(attr("reason").as_deref(), Some("NotRegistered"));
    assert_eq!(attr("sender").as_deref(), Some(stranger.as_str()));
    assert!(response.messages.is_empty(), "no strike, nothing sent");
    attempt(&mut deps);
    let tally: ehr_protocol::exchange::OutsiderTally =
        from_json(query(deps.as_ref(), mock_env(), QueryMsg::OutsiderAttempts {}).unwrap())
            .unwrap();
    assert_eq!(tally.attempts, 2);
    // No audit entry per attempt: an outsider cannot grow the log.
    let audit: ehr_protocol::registry::AuditLogResponse = from_json(
        query(
            deps.as_ref(),
            mock_env(),
            QueryMsg::AuditLog {
                start_after: None,
                limit: None,
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert!(audit.entries.is_empty());
}

/// The requester's client follows only its own request's events (`wasm.request_id`): the
/// ack and the timeout of a request packet name it, even when it is not (or no longer) ours.
#[test]
fn ack_and_timeout_events_name_the_request_they_settle() {
    let mut deps = setup(true);
    let relayer = deps.api.addr_make("relayer");
    let body = ehr_protocol::test_vectors::request_body();
    let sent = cosmwasm_std::to_json_vec(&ehr_protocol::packet::ExchangePacket::Request(
        ehr_protocol::packet::RequestPacket {
            body: body.clone(),
            signer_pubkey: Binary::from(vec![2u8; 33]),
            signature: Binary::from(vec![3u8; 64]),
        },
    ))
    .unwrap();
    let named = |attributes: &[cosmwasm_std::Attribute]| {
        attributes
            .iter()
            .find(|a| a.key == "request_id")
            .map(|a| a.value.clone())
    };
    let Ok(acked) = ibc_packet_ack(
        deps.as_mut(),
        mock_env(),
        IbcPacketAckMsg::new(
            IbcAcknowledgement::new(StdAck::error("ehrx:Replay").to_binary()),
            packet(&sent, CHANNEL),
            relayer.clone(),
        ),
    );
    assert_eq!(named(&acked.attributes), Some(body.request_id.clone()));
    let Ok(timed_out) = ibc_packet_timeout(
        deps.as_mut(),
        mock_env(),
        IbcPacketTimeoutMsg::new(packet(&sent, CHANNEL), relayer.clone()),
    );
    assert_eq!(named(&timed_out.attributes), Some(body.request_id));
    let Ok(unknown) = ibc_packet_timeout(
        deps.as_mut(),
        mock_env(),
        IbcPacketTimeoutMsg::new(packet(b"x", CHANNEL), relayer),
    );
    assert_eq!(named(&unknown.attributes), None);
}
