//! The money CLI (`cocoon wallet …`): wallets and the three contract kinds on a devnet chain
//! (DESIGN §6, §7): faucet and transfers, client deposits and closes, worker payouts with
//! proxy-signed vouchers, proxy stake and commission, every balance, and an audit that
//! checks where each nanoTON went.
//!
//! Library first: [`run`] returns the text (or JSON) to print, so tests drive it against any
//! [`Chain`]; [`ChainArgs`] opens the chain the flags name (a `cocoon chain serve` URL or a
//! database file). Chain refusals become one-line errors that say what to do.

mod amount;
mod args;
mod audit;
mod names;
mod ops;
mod report;
mod show;
mod submit;

pub use amount::{parse_amount, Amount, NANO_PER_TON};
pub use args::{
    ChainArgs, ClientCommand, ContractAt, Format, ProxyCommand, WalletCommand, WorkerCommand,
    DEFAULT_CHAIN_URL,
};
pub use audit::{audit, Audit, PartyAudit, ProxyAudit};
pub use names::{parse_address, Names};
pub use report::Report;

use cocoon_chain::ledger::Address;
use cocoon_chain::Chain;
use ops::ProxyAction;

/// Runs `cmd` against `chain` and returns what to print (text, or JSON with `--json`).
pub fn run(cmd: &WalletCommand, chain: &dyn Chain) -> anyhow::Result<String> {
    let json = cmd.json();
    report(cmd, chain).map(|r| r.render(json))
}

/// Opens the chain `args` name (only when `cmd` needs one) and runs `cmd`: the whole
/// `cocoon wallet` command. Blocking: async callers wrap it in `spawn_blocking`.
pub fn exec(args: &ChainArgs, cmd: &WalletCommand) -> anyhow::Result<String> {
    if let WalletCommand::Address { name } = cmd {
        return address(name);
    }
    let chain = args.open()?;
    run(cmd, &*chain)
}

fn address(name: &str) -> anyhow::Result<String> {
    if name.trim().is_empty() {
        anyhow::bail!("empty wallet name");
    }
    Ok(format!("{}\n", Address::wallet(name)))
}

/// Wallet names mentioned on the command line, to label addresses in the output.
fn names_of(cmd: &WalletCommand) -> Names {
    let mut given: Vec<&str> = Vec::new();
    fn at<'a>(given: &mut Vec<&'a str>, a: &'a ContractAt) {
        given.push(&a.owner);
        given.push(&a.proxy);
    }
    match cmd {
        WalletCommand::Address { .. } | WalletCommand::Advance { .. } => {}
        WalletCommand::Show { who, .. } => given.push(who),
        WalletCommand::Faucet { to, .. } => given.push(to),
        WalletCommand::Transfer { from, to, .. } => given.extend([from.as_str(), to]),
        WalletCommand::Balances { names, .. } | WalletCommand::Audit { names, .. } => {
            given.extend(names.iter().map(String::as_str))
        }
        WalletCommand::Client(c) => match c {
            ClientCommand::Deploy { at: a, .. }
            | ClientCommand::TopUp { at: a, .. }
            | ClientCommand::Withdraw { at: a, .. }
            | ClientCommand::Close { at: a, .. }
            | ClientCommand::Stake { at: a, .. }
            | ClientCommand::Show { at: a, .. } => at(&mut given, a),
            ClientCommand::Charge { .. } => {}
        },
        WalletCommand::Worker(w) => match w {
            WorkerCommand::Deploy { at: a, .. } | WorkerCommand::Show { at: a, .. } => {
                at(&mut given, a)
            }
            WorkerCommand::Payout { .. } => {}
        },
        WalletCommand::Proxy(p) => match p {
            ProxyCommand::Withdraw { at: a, .. }
            | ProxyCommand::Close { at: a, .. }
            | ProxyCommand::CompleteClose { at: a, .. } => at(&mut given, a),
            ProxyCommand::Stake { proxy, from, .. } => given.extend([proxy.as_str(), from]),
            ProxyCommand::Show { proxy, .. } => given.push(proxy),
        },
    }
    Names::with(given)
}

fn report(cmd: &WalletCommand, chain: &dyn Chain) -> anyhow::Result<Report> {
    let names = &names_of(cmd);
    Ok(match cmd {
        WalletCommand::Address { name } => {
            let mut r = Report::new(serde_json::json!(Address::wallet(name)));
            r.line(address(name)?.trim_end());
            r
        }
        WalletCommand::Show { who, .. } => show::show(&*submit::world(chain)?, names, who)?,
        WalletCommand::Faucet { to, amount, .. } => ops::faucet(chain, names, to, *amount)?,
        WalletCommand::Transfer {
            from, to, amount, ..
        } => ops::transfer(chain, names, from, to, *amount)?,
        WalletCommand::Balances { .. } => show::balances(&*submit::world(chain)?, names),
        WalletCommand::Audit { check, .. } => {
            let audit = audit::audit(chain)?;
            if *check && !audit.ok() {
                anyhow::bail!("audit failed: {}", audit.problems.join("; "));
            }
            audit.report(&*submit::world(chain)?, names)
        }
        WalletCommand::Client(c) => match c {
            ClientCommand::Deploy { at, deposit, .. } => {
                ops::client_deploy(chain, names, at, *deposit)?
            }
            ClientCommand::TopUp { at, amount, .. } => {
                ops::client_top_up(chain, names, at, *amount)?
            }
            ClientCommand::Withdraw { at, .. } => ops::client_withdraw(chain, names, at)?,
            ClientCommand::Close { at, .. } => ops::client_close(chain, names, at)?,
            ClientCommand::Stake { at, amount, .. } => {
                ops::client_stake(chain, names, at, *amount)?
            }
            ClientCommand::Charge { voucher, .. } => ops::client_charge(chain, names, voucher)?,
            ClientCommand::Show { at, .. } => ops::client_show(chain, names, at)?,
        },
        WalletCommand::Worker(w) => match w {
            WorkerCommand::Deploy { at, .. } => ops::worker_deploy(chain, names, at)?,
            WorkerCommand::Payout { voucher, .. } => ops::worker_payout(chain, names, voucher)?,
            WorkerCommand::Show { at, .. } => ops::worker_show(chain, names, at)?,
        },
        WalletCommand::Proxy(p) => match p {
            ProxyCommand::Withdraw { at, .. } => {
                ops::proxy_action(chain, names, at, ProxyAction::Withdraw)?
            }
            ProxyCommand::Close { at, .. } => {
                ops::proxy_action(chain, names, at, ProxyAction::Close)?
            }
            ProxyCommand::CompleteClose { at, .. } => {
                ops::proxy_action(chain, names, at, ProxyAction::CompleteClose)?
            }
            ProxyCommand::Stake {
                proxy,
                from,
                amount,
                ..
            } => ops::proxy_stake(chain, names, proxy, from, *amount)?,
            ProxyCommand::Show { proxy, .. } => ops::proxy_show(chain, names, proxy)?,
        },
        WalletCommand::Advance { secs, .. } => ops::advance(chain, *secs)?,
    })
}
