use super::support::setup;
use crate::contract::query;
use crate::state::{Incoming, INCOMING, PENDING_INCOMING};
use cosmwasm_std::testing::mock_env;
use cosmwasm_std::{from_json, to_json_vec, Addr, Binary, Order, Storage};
use ehr_protocol::exchange::{
    IncomingCursor, IncomingRequest, IncomingRequestsResponse, IncomingStatus, QueryMsg,
    ReplyProgress,
};
use ehr_protocol::packet::RequestBody;
use ehr_protocol::test_vectors::request_body;
use ehr_protocol::ErrorCode;

fn incoming(partner: &str, request_id: &str) -> IncomingRequest {
    IncomingRequest {
        partner_id: partner.into(),
        channel_id: "channel-0".into(),
        packet_sequence: 1,
        received_at: 1_700_000_000,
        body: RequestBody {
            request_id: request_id.into(),
            source_network: partner.into(),
            destination_network: "hospital-a".into(),
            ..request_body()
        },
        signer_pubkey: Binary::from(vec![2u8; 33]),
        signature: Binary::from(vec![3u8; 64]),
        sealed_patient_sha256: None,
        status: IncomingStatus::Pending,
        answered_by: None,
        reason: None,
        reply: None,
        break_glass: None,
    }
}

fn keep_pending(storage: &mut dyn Storage, request: &IncomingRequest) {
    let key = (
        request.partner_id.as_str(),
        request.body.request_id.as_str(),
    );
    INCOMING.save(storage, key, request).unwrap();
    PENDING_INCOMING.save(storage, key, &()).unwrap();
}

fn page(deps: &super::support::Deps, start_after: Option<IncomingCursor>) -> Vec<(String, String)> {
    let msg = QueryMsg::PendingIncoming {
        start_after,
        limit: Some(2),
    };
    let page: IncomingRequestsResponse =
        from_json(query(deps.as_ref(), mock_env(), msg).unwrap()).unwrap();
    page.requests
        .iter()
        .map(|r| (r.partner_id.clone(), r.body.request_id.clone()))
        .collect()
}

#[test]
fn pending_incoming_pages_with_a_named_cursor() {
    let mut deps = setup(true);
    let ids = [
        ("hospital-b", "req-b-000000000001"),
        ("hospital-b", "req-b-000000000002"),
        ("hospital-c", "req-c-000000000001"),
    ];
    for (partner, id) in ids {
        keep_pending(&mut deps.storage, &incoming(partner, id));
    }
    let first = page(&deps, None);
    assert_eq!(first.len(), 2);
    let last = INCOMING
        .load(&deps.storage, (first[1].0.as_str(), first[1].1.as_str()))
        .unwrap();
    let second = page(&deps, Some(IncomingCursor::after(&last)));
    let all: Vec<_> = first.into_iter().chain(second).collect();
    let expected: Vec<_> = ids
        .iter()
        .map(|(p, i)| (p.to_string(), i.to_string()))
        .collect();
    assert_eq!(all, expected);
    // The cursor is an object on the wire, as the published schema says.
    let json = String::from_utf8(to_json_vec(&IncomingCursor::after(&last)).unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"partner_id":"hospital-b","request_id":"req-b-000000000002"}"#
    );
}

#[test]
fn a_malformed_cursor_is_refused_with_a_clear_error() {
    let deps = setup(true);
    for cursor in [
        IncomingCursor {
            partner_id: "".into(),
            request_id: "req-b-000000000001".into(),
        },
        IncomingCursor {
            partner_id: "hospital-b".into(),
            request_id: "Not An Id".into(),
        },
    ] {
        let msg = QueryMsg::PendingIncoming {
            start_after: Some(cursor),
            limit: None,
        };
        let err = query(deps.as_ref(), mock_env(), msg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("InvalidFormat: malformed start_after cursor"),
            "{err}"
        );
        assert!(
            !err.contains("Not An Id"),
            "the cursor's values are not echoed: {err}"
        );
    }
    // What typed clients of the old tuple cursor sent (string[][]) and half a cursor are
    // refused.
    for bad in [
        r#"{"pending_incoming":{"start_after":[["hospital-b","req-b-000000000001"]]}}"#,
        r#"{"pending_incoming":{"start_after":{"partner_id":"hospital-b"}}}"#,
        r#"{"pending_incoming":{"start_after":"hospital-b/req-b-000000000001"}}"#,
    ] {
        assert!(
            from_json::<QueryMsg>(bad.as_bytes()).is_err(),
            "{bad} parsed"
        );
    }
    // The old pair, as earlier peer tools send it, still reads as the same cursor (serde
    // reads a struct from a sequence of its fields in order).
    let old: QueryMsg =
        from_json(br#"{"pending_incoming":{"start_after":["hospital-b","req-b-000000000001"]}}"#)
            .unwrap();
    let QueryMsg::PendingIncoming { start_after, .. } = old else {
        panic!("not pending_incoming");
    };
    assert_eq!(
        start_after,
        Some(IncomingCursor {
            partner_id: "hospital-b".into(),
            request_id: "req-b-000000000001".into(),
        })
    );
}

#[test]
fn state_kept_with_nanosecond_timestamps_reads_as_unix_seconds() {
    let mut deps = setup(true);
    let request = incoming("hospital-b", "req-b-000000000001");
    keep_pending(&mut deps.storage, &request);
    // Rewrite the stored entry as the release before unix seconds kept it.
    let key = INCOMING.key(("hospital-b", "req-b-000000000001"));
    let stored = String::from_utf8(deps.storage.get(&key).unwrap()).unwrap();
    let legacy = stored.replace(
        r#""received_at":1700000000"#,
        r#""received_at":"1700000000987654321""#,
    );
    assert_ne!(legacy, stored);
    deps.storage.set(&key, legacy.as_bytes());
    let loaded = INCOMING
        .load(&deps.storage, ("hospital-b", "req-b-000000000001"))
        .unwrap();
    assert_eq!(loaded.received_at, 1_700_000_000);
    assert_eq!(loaded, request);
}

fn stored_bytes(storage: &dyn Storage) -> usize {
    storage
        .range(None, None, Order::Ascending)
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

/// Each step of an answer writes the request's progress, never the request again: the
/// chain charges 30 gas a byte written, and the request is ~2.5 KB.
#[test]
fn a_step_of_an_answer_rewrites_the_progress_not_the_request() {
    let mut deps = setup(true);
    let mut request = incoming("hospital-b", "req-b-000000000001");
    keep_pending(&mut deps.storage, &request);
    let key = INCOMING.key(("hospital-b", "req-b-000000000001"));
    let as_received = deps.storage.get(&key).unwrap();
    assert!(as_received.len() > 1_000, "{}", as_received.len());
    let before = stored_bytes(&deps.storage);

    request.status = IncomingStatus::Answered;
    request.answered_by = Some(Addr::unchecked("cosmwasm1responder"));
    request.reply = Some(ReplyProgress {
        chunk_count: 3,
        chunks_sent: 3,
        chunks_acked: 1,
    });
    Incoming::update(&mut deps.storage, &request).unwrap();

    assert_eq!(deps.storage.get(&key).unwrap(), as_received);
    let written = stored_bytes(&deps.storage) - before;
    assert!(written < 250, "the progress took {written} bytes");
    let key = ("hospital-b", "req-b-000000000001");
    assert_eq!(
        Incoming::may_load(&deps.storage, key).unwrap(),
        Some(request.clone())
    );
    let progress = Incoming::may_load_progress(&deps.storage, key)
        .unwrap()
        .unwrap();
    assert_eq!(progress.status, IncomingStatus::Answered);
    assert_eq!(progress.reply.unwrap().chunks_acked, 1);
}

/// An entry written whole before the progress was split off reads as it was kept.
#[test]
fn a_request_kept_whole_by_an_earlier_release_reads_with_its_own_progress() {
    let mut deps = setup(true);
    let mut request = incoming("hospital-b", "req-b-000000000001");
    request.status = IncomingStatus::Failed;
    request.reason = Some(ErrorCode::Expired);
    keep_pending(&mut deps.storage, &request);
    let key = ("hospital-b", "req-b-000000000001");
    assert_eq!(
        Incoming::may_load(&deps.storage, key).unwrap(),
        Some(request)
    );
    let progress = Incoming::may_load_progress(&deps.storage, key)
        .unwrap()
        .unwrap();
    assert_eq!(progress.status, IncomingStatus::Failed);
    assert_eq!(progress.reason, Some(ErrorCode::Expired));
    assert_eq!(
        Incoming::may_load(&deps.storage, ("hospital-b", "other")).unwrap(),
        None
    );
}

/// A reply's chunks stay in their packets: `RetrieveReply` names each one's packet. A reply
/// an earlier release stored whole names none, and its chunks are read from the state.
#[test]
fn a_reply_names_each_chunk_s_packet_and_an_earlier_one_is_read_from_the_state() {
    use crate::execute::chunk_packets;
    use crate::state::{REPLY_CHUNKS, REPLY_CHUNKS_IN};
    let mut deps = setup(true);
    for (index, sequence) in [(0u32, 7u64), (1, 9), (2, 12)] {
        REPLY_CHUNKS_IN
            .save(&mut deps.storage, ("req-new", index), &Some(sequence))
            .unwrap();
    }
    assert_eq!(
        chunk_packets(&deps.storage, "req-new").unwrap(),
        vec![7, 9, 12]
    );

    for index in 0..2u32 {
        REPLY_CHUNKS_IN
            .save(&mut deps.storage, ("req-old", index), &None)
            .unwrap();
        REPLY_CHUNKS.save(&mut deps.storage, &["req-old"], index, &[index as u8; 4]);
    }
    // As the earlier release wrote its index: `()` is JSON null.
    let key = REPLY_CHUNKS_IN.key(("req-old", 1));
    assert_eq!(deps.storage.get(&key).unwrap(), b"null");
    assert_eq!(
        chunk_packets(&deps.storage, "req-old").unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(
        REPLY_CHUNKS.load(&deps.storage, &["req-old"], 1),
        Some(vec![1u8; 4])
    );
}
