//! Pinning the contracts' codes by governance, as a hospital's chain would: `MsgPinCodes`
//! may only be sent by the gov module's authority, so it travels in a `MsgSubmitProposal`
//! (gov v1) that the chain's stakers vote on.
//!
//! Who can pass it: voting power is bonded stake only. The admin holds the bonding denom
//! but none of it is bonded (x/circuit disables `MsgDelegate` from genesis), so its vote
//! weighs nothing and alone never reaches the quorum (33.4% of the bonded stake). The
//! validators' operators hold all of it (their gentx self-bonds), so the admin submits and
//! deposits, and the admin and every operator vote yes, at once: the voting period is a few
//! seconds and one vote after the other would not fit in it on a chain of 4 validators.
//!
//! A pinned contract costs 2,000 gas to load instead of 60,000 (wasmd's
//! `InstanceCostDiscount` / `InstanceCost`), and a packet's receive loads the exchange and,
//! for its queries, the registry.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cosmrs::proto::cosmos::base::v1beta1::Coin;
use cosmrs::proto::cosmos::gov::v1::{
    MsgSubmitProposal, MsgVote, Proposal, ProposalStatus, QueryParamsRequest, QueryParamsResponse,
    QueryProposalRequest, QueryProposalResponse, VoteOption,
};
use cosmrs::proto::cosmwasm::wasm::v1::{
    MsgPinCodes, QueryPinnedCodesRequest, QueryPinnedCodesResponse,
};
use cosmrs::Any;
use ehrx_chain::{BlockingChain, ChainClient as _, KeyringKey};
use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::config::Devnet;
use crate::progress::Progress;

pub const MSG_SUBMIT_PROPOSAL: &str = "/cosmos.gov.v1.MsgSubmitProposal";
pub const MSG_VOTE: &str = "/cosmos.gov.v1.MsgVote";
pub const MSG_PIN_CODES: &str = "/cosmwasm.wasm.v1.MsgPinCodes";
/// How long the codes may take to be pinned once the voting period is over.
pub const PIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The address of SDK module `name` (`gov`): the first 20 bytes of SHA-256 of the name,
/// the SDK's `address.Module` for a module without derivation keys.
pub fn module_address(prefix: &str, name: &str) -> Result<String> {
    let hash = Sha256::digest(name.as_bytes());
    let id = cosmrs::AccountId::new(prefix, &hash[..20])
        .map_err(|e| anyhow!("the {name} module's address with prefix {prefix}: {e}"))?;
    Ok(id.to_string())
}

/// A gov v1 proposal by `proposer`, depositing `deposit`, whose one message pins `code_ids`
/// with the gov module's `authority`.
pub fn pin_codes_proposal(
    proposer: &str,
    authority: &str,
    code_ids: &[u64],
    deposit: Vec<Coin>,
) -> Any {
    let pin = Any {
        type_url: MSG_PIN_CODES.into(),
        value: MsgPinCodes {
            authority: authority.to_string(),
            code_ids: code_ids.to_vec(),
        }
        .encode_to_vec(),
    };
    let ids: Vec<String> = code_ids.iter().map(u64::to_string).collect();
    Any {
        type_url: MSG_SUBMIT_PROPOSAL.into(),
        value: MsgSubmitProposal {
            messages: vec![pin],
            initial_deposit: deposit,
            proposer: proposer.to_string(),
            metadata: String::new(),
            title: "Pin the ehrx contracts".into(),
            summary: format!(
                "Keep codes {} (registry and exchange) in the VM cache",
                ids.join(", ")
            ),
            expedited: false,
        }
        .encode_to_vec(),
    }
}

/// `voter`'s yes on proposal `id`.
pub fn vote_yes(id: u64, voter: &str) -> Any {
    Any {
        type_url: MSG_VOTE.into(),
        value: MsgVote {
            proposal_id: id,
            voter: voter.to_string(),
            option: VoteOption::Yes as i32,
            metadata: String::new(),
        }
        .encode_to_vec(),
    }
}

/// `PROPOSAL_STATUS_REJECTED` as `REJECTED`.
pub fn status_name(status: i32) -> &'static str {
    ProposalStatus::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("PROPOSAL_STATUS_UNKNOWN")
        .trim_start_matches("PROPOSAL_STATUS_")
}

/// Whether a proposal in `status` is over without having passed.
fn ended_without_passing(status: i32) -> bool {
    status == ProposalStatus::Rejected as i32 || status == ProposalStatus::Failed as i32
}

/// A proposal's tally, for an error message.
fn tally_text(p: &Proposal) -> String {
    p.final_tally_result
        .as_ref()
        .map(|t| {
            format!(
                "tally yes {} no {} abstain {} veto {}",
                t.yes_count, t.no_count, t.abstain_count, t.no_with_veto_count
            )
        })
        .unwrap_or_else(|| "no tally".into())
}

fn grpc<A: prost::Message + Default>(
    client: &BlockingChain,
    what: &str,
    path: &str,
    request: &impl prost::Message,
) -> Result<A> {
    client
        .block_on(client.chain().grpc_typed(what, path, request))
        .with_context(|| format!("querying {what}"))
}

/// The code ids pinned in the chain's VM cache.
pub fn pinned_codes(client: &BlockingChain) -> Result<Vec<u64>> {
    let mut all = Vec::new();
    let mut key = Vec::new();
    loop {
        let request = QueryPinnedCodesRequest {
            pagination: Some(cosmrs::proto::cosmos::base::query::v1beta1::PageRequest {
                key: key.clone(),
                limit: 100,
                ..Default::default()
            }),
        };
        let page: QueryPinnedCodesResponse = grpc(
            client,
            "the pinned codes",
            "/cosmwasm.wasm.v1.Query/PinnedCodes",
            &request,
        )?;
        all.extend(page.code_ids);
        match page.pagination.map(|p| p.next_key) {
            Some(next) if !next.is_empty() => key = next,
            _ => return Ok(all),
        }
    }
}

pub fn proposal(client: &BlockingChain, id: u64) -> Result<Proposal> {
    let answer: QueryProposalResponse = grpc(
        client,
        &format!("gov proposal {id}"),
        "/cosmos.gov.v1.Query/Proposal",
        &QueryProposalRequest { proposal_id: id },
    )?;
    answer
        .proposal
        .ok_or_else(|| anyhow!("the chain has no gov proposal {id}"))
}

/// The deposit that puts a proposal to the vote at once.
fn min_deposit(client: &BlockingChain) -> Result<Vec<Coin>> {
    let answer: QueryParamsResponse = grpc(
        client,
        "the gov parameters",
        "/cosmos.gov.v1.Query/Params",
        &QueryParamsRequest {
            params_type: "deposit".into(),
        },
    )?;
    Ok(answer.params.map(|p| p.min_deposit).unwrap_or_default())
}

/// Stops before anything is sent when `admin` cannot pay `deposit`.
fn check_deposit(
    client: &BlockingChain,
    chain_id: &str,
    admin: &str,
    deposit: &[Coin],
) -> Result<()> {
    for coin in deposit {
        let need: u128 = coin.amount.parse().unwrap_or(0);
        let held = client
            .block_on(client.chain().balance(admin, &coin.denom))
            .context("querying the admin's balance")?;
        if held < need {
            bail!(
                "{chain_id}: the pin proposal needs a deposit of {need}{denom} and the admin \
                 {admin} holds {held}{denom}: give the admin account `bond = {need}` or more \
                 in the devnet file (a new devnet: `ehrx-devnet down --clean`, then `up`), or \
                 set pin = false on its [[contract]]s",
                denom = coin.denom
            );
        }
    }
    Ok(())
}

/// The operator keys of the chain's validators (`<dir>/<chain>/val<i>`, name `operator`).
fn operator_keys(devnet: &Devnet, dir: &Path, chain_id: &str) -> Result<Vec<KeyringKey>> {
    Ok(crate::layout::nodes(devnet, dir, chain_id)?
        .into_iter()
        .map(|node| KeyringKey {
            home: node.home,
            backend: "test".into(),
            name: "operator".into(),
        })
        .collect())
}

/// Submits the pin proposal as the admin, votes yes with the admin and every validator's
/// operator, and waits until `code_ids` are pinned. The proposal's id.
pub fn pin_codes(
    p: &Progress,
    devnet: &Devnet,
    dir: &Path,
    chain_id: &str,
    admin: &BlockingChain,
    code_ids: &[u64],
) -> Result<u64> {
    let admin_address = admin.address()?;
    let authority = module_address("wasm", "gov")?;
    let deposit = min_deposit(admin)?;
    check_deposit(admin, chain_id, &admin_address, &deposit)?;
    let (_, chain) = devnet
        .chain(chain_id)
        .with_context(|| format!("no chain {chain_id:?} in the devnet file"))?;
    p.say(format!(
        "{chain_id}: pin codes {code_ids:?}: gov proposal by the admin (voting period {})",
        chain.voting_period
    ));
    let tx = admin
        .execute_any(&[pin_codes_proposal(
            &admin_address,
            &authority,
            code_ids,
            deposit,
        )])
        .with_context(|| format!("{chain_id}: submitting the pin proposal"))?;
    tx.ensure_accepted("")
        .with_context(|| format!("{chain_id}: the pin proposal was refused"))?;
    let id: u64 = tx
        .event_values("submit_proposal", "proposal_id")
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "{chain_id}: the pin proposal's transaction {} has no submit_proposal.proposal_id",
                tx.txhash
            )
        })?;
    let operators = operator_keys(devnet, dir, chain_id)?;
    p.say(format!(
        "{chain_id}: proposal {id}: the admin and {} validator operator(s) vote yes",
        operators.len()
    ));
    vote_all(devnet, dir, chain_id, admin, id, &operators)?;
    let voting = crate::config::parse_duration(&chain.voting_period)
        .map_err(|e| anyhow!("{chain_id}: voting_period: {e}"))?;
    wait_pinned(p, chain_id, admin, id, code_ids, voting + PIN_TIMEOUT)?;
    Ok(id)
}

/// Every voter's yes, sent at once (one thread and client each), so that all land within
/// the short voting period.
fn vote_all(
    devnet: &Devnet,
    dir: &Path,
    chain_id: &str,
    admin: &BlockingChain,
    id: u64,
    operators: &[KeyringKey],
) -> Result<()> {
    let admin_vote = || -> Result<()> {
        let tx = admin.execute_any(&[vote_yes(id, &admin.address()?)])?;
        Ok(tx.ensure_accepted("")?)
    };
    let results: Vec<(String, Result<()>)> = std::thread::scope(|s| {
        let handles: Vec<_> = operators
            .iter()
            .map(|key| {
                let who = format!("operator of {}", key.home.display());
                let handle = s.spawn(move || -> Result<()> {
                    let client = crate::deploy::client_with_key(devnet, dir, chain_id, key)?;
                    let tx = client.execute_any(&[vote_yes(id, &client.address()?)])?;
                    Ok(tx.ensure_accepted("")?)
                });
                (who, handle)
            })
            .collect();
        let mut results = vec![("admin".to_string(), admin_vote())];
        for (who, handle) in handles {
            let result = handle
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the voting thread panicked")));
            results.push((who, result));
        }
        results
    });
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(who, r)| r.err().map(|e| format!("{who}: {e:#}")))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{chain_id}: votes on the pin proposal {id} failed (a vote after the voting \
             period ends is refused: is the chain slow?):\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// Waits (by query) until `code_ids` are pinned; stops at once when the proposal ends
/// without passing.
fn wait_pinned(
    p: &Progress,
    chain_id: &str,
    client: &BlockingChain,
    id: u64,
    code_ids: &[u64],
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    let mut last_note = Instant::now();
    p.say(format!(
        "{chain_id}: waiting for proposal {id} to pass and the codes to be pinned"
    ));
    loop {
        let pinned = pinned_codes(client)?;
        if code_ids.iter().all(|c| pinned.contains(c)) {
            p.say(format!(
                "{chain_id}: codes {code_ids:?} pinned (proposal {id}, {:.1}s)",
                start.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        let proposal = proposal(client, id)?;
        if ended_without_passing(proposal.status) {
            bail!(
                "{chain_id}: the pin proposal {id} ended {} ({}): the validators' operators \
                 must vote yes within the voting period; see `wasmd q gov proposal {id}` and \
                 the nodes' logs, then `ehrx-devnet down --clean` and `up` again",
                status_name(proposal.status),
                tally_text(&proposal)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "{chain_id}: codes {code_ids:?} not pinned {}s after the votes on proposal {id} \
                 (status {}, {}; pinned: {pinned:?}): is the chain making blocks? \
                 (`ehrx-devnet status`)",
                timeout.as_secs(),
                status_name(proposal.status),
                tally_text(&proposal)
            );
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            p.say(format!(
                "{chain_id}: still waiting for proposal {id} ({}, {:.0}s)",
                status_name(proposal.status),
                start.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";

    #[test]
    fn the_gov_authority_is_wasmds() {
        // `wasmd q auth module-account gov` on wasmd v0.61.
        assert_eq!(
            module_address("wasm", "gov").unwrap(),
            "wasm10d07y265gmmuvt4z0w9aw880jnsr700js7zslc"
        );
    }

    #[test]
    fn the_proposal_carries_pin_codes_with_the_authority() {
        let authority = module_address("wasm", "gov").unwrap();
        let deposit = vec![Coin {
            denom: "stake".into(),
            amount: "10000000".into(),
        }];
        let any = pin_codes_proposal(ADMIN, &authority, &[1, 2], deposit.clone());
        assert_eq!(any.type_url, MSG_SUBMIT_PROPOSAL);
        let msg = MsgSubmitProposal::decode(any.value.as_slice()).unwrap();
        assert_eq!(msg.proposer, ADMIN);
        assert_eq!(msg.initial_deposit, deposit);
        assert!(!msg.expedited);
        assert!(!msg.title.is_empty() && !msg.summary.is_empty());
        assert_eq!(msg.messages.len(), 1);
        assert_eq!(msg.messages[0].type_url, MSG_PIN_CODES);
        let pin = MsgPinCodes::decode(msg.messages[0].value.as_slice()).unwrap();
        assert_eq!(pin.authority, authority);
        assert_eq!(pin.code_ids, vec![1, 2]);
    }

    #[test]
    fn a_vote_is_yes_on_the_proposal() {
        let any = vote_yes(7, ADMIN);
        assert_eq!(any.type_url, MSG_VOTE);
        let msg = MsgVote::decode(any.value.as_slice()).unwrap();
        assert_eq!((msg.proposal_id, msg.voter.as_str()), (7, ADMIN));
        assert_eq!(msg.option, VoteOption::Yes as i32);
    }

    #[test]
    fn statuses_read_short() {
        assert_eq!(status_name(ProposalStatus::Rejected as i32), "REJECTED");
        assert_eq!(
            status_name(ProposalStatus::VotingPeriod as i32),
            "VOTING_PERIOD"
        );
        assert_eq!(status_name(42), "UNKNOWN");
        assert!(ended_without_passing(ProposalStatus::Failed as i32));
        assert!(!ended_without_passing(ProposalStatus::Passed as i32));
    }
}
