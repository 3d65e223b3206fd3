//! `ehrx-devnet env CHAIN`: shell exports for one chain of devnet.json (CHAIN_ID,
//! CHAIN_HOME, CHAIN_NODE, REGISTRY, EXCHANGE), for `eval "$(...)"`.

use anyhow::{Context, Result};

use crate::cmd::DirArg;
use crate::state::State;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    pub chain: String,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.dir.path();
    let state = State::load(&dir)?
        .with_context(|| format!("no devnet in {} (scripts/devnet.sh up)", dir.display()))?;
    let c = state.chains.get(&args.chain).with_context(|| {
        format!(
            "{} is not a chain of this devnet ({})",
            args.chain,
            state.chain_ids.join(", ")
        )
    })?;
    let home = c.home.to_string_lossy();
    for (k, v) in [
        ("CHAIN_ID", c.chain_id.as_str()),
        ("CHAIN_HOME", &*home),
        ("CHAIN_NODE", c.node.as_str()),
        ("REGISTRY", c.deployed.contracts.registry.as_str()),
        ("EXCHANGE", c.deployed.contracts.exchange.as_str()),
    ] {
        println!("export {k}={}", shell_quote(v));
    }
    Ok(())
}

/// `'text'`, with any single quote closed, escaped and reopened.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(super::shell_quote("a b"), "'a b'");
        assert_eq!(super::shell_quote("it's"), r"'it'\''s'");
    }
}
