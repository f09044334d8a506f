#!/usr/bin/env python3
"""Everyday operations of the unchanged Bittensor SDK (PyPI ``bittensor``) against a devnet.

    python everyday.py ws://127.0.0.1:9944 [--netuid 1] [--coldkey //Bob] [--hotkey //Bob//miner]

Does what a new subnet user does, in order: read the block number, read the metagraph,
register a hotkey (burned registration: the SDK's intent, which always goes through the MEV
shield; only if it failed, the same call in the clear through the SDK's raw-call path), fund the hotkey, serve
an axon, add stake, lower the subnet's min_allowed_weights as its owner, set weights (after the rate limit that registration starts), read the weights
back, read the metagraph again. Each operation runs even if an earlier one failed. Prints ONE JSON line:

    {"sdk": "11.3.0", "passed": [...], "failed": [...], "ops": {name: {"ok": bool,
     "error": str | null, "value": ...}}}

``value`` holds what the SDK returned (block number, metagraph n/hotkeys, uid, stake in
rao, the u16 weights read back) so that a test can compare it with the chain's own state.
Exit status 0 when every operation passed, 1 otherwise. Used by chain/devnet/tests/sdk_client.rs.
"""

import argparse
import json
import sys
import traceback

import bittensor as bt
from bittensor.keyfiles import Keypair


class DevWallet:
    """A wallet held in memory, built from dev key URIs (the SDK's ``KeyedWallet`` shape)."""

    def __init__(self, coldkey_uri, hotkey_uri):
        self.coldkey = Keypair.create_from_uri(coldkey_uri)
        self.coldkeypub = self.coldkey
        self.hotkey = Keypair.create_from_uri(hotkey_uri)
        self.hotkeypub = self.hotkey


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("--netuid", type=int, default=1)
    parser.add_argument("--coldkey", default="//Bob")
    parser.add_argument("--hotkey", default="//Bob//miner")
    parser.add_argument("--stake-tao", type=float, default=10.0)
    parser.add_argument("--fund-tao", type=float, default=1.0)
    parser.add_argument("--axon-ip", default="203.0.113.7", help="subtensor refuses 127.0.0.1")
    parser.add_argument("--axon-port", type=int, default=8091)
    parser.add_argument("--owner", default="//Alice", help="the subnet owner's coldkey")
    parser.add_argument("--wait-s", type=float, default=120.0, help="longest wait for the rate limit")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks to stderr")
    args = parser.parse_args()

    wallet = DevWallet(args.coldkey, args.hotkey)
    hotkey = wallet.hotkey.ss58_address
    netuid = args.netuid
    ops = {}

    def run(name, fn):
        try:
            ops[name] = {"ok": True, "error": None, "value": fn()}
        except BaseException as e:  # noqa: BLE001 -- report every failure, go on
            if args.verbose:
                traceback.print_exc()
            ops[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000], "value": None}

    def executed(result):
        if not result.success:
            raise RuntimeError(f"extrinsic failed: {result}")
        # The SDK decodes System.Events with the served metadata: the receipt must carry them.
        events = [f"{e['module_id']}.{e['event_id']}" for e in result.events]
        if "System.ExtrinsicSuccess" not in events:
            raise RuntimeError(f"no ExtrinsicSuccess among the decoded events {events}")
        return {"extrinsic": result.extrinsic_id, "events": events}

    sub = bt.Subtensor(args.endpoint)

    def metagraph():
        mg = sub.subnets.metagraph(netuid)
        if mg is None:
            raise RuntimeError(f"no metagraph for netuid {netuid}")
        return {"n": len(mg), "hotkeys": list(mg.hotkeys)}

    def uid_of_hotkey():
        uid = sub.neurons.uid(hotkey, netuid)
        if uid is None:
            raise RuntimeError(f"{hotkey} has no uid on netuid {netuid}")
        return uid

    def burned_register():
        out = executed(sub.execute(bt.BurnedRegister(netuid=netuid), wallet))
        out["uid"] = uid_of_hotkey()
        return out

    def burned_register_unshielded():
        # The same `burned_register` call, submitted in the clear through the SDK's raw-call
        # path (`submit_call`): the intent above always goes through the MEV shield.
        if ops.get("burned_register", {}).get("ok"):
            return {"skipped": "registered by the intent", "uid": ops["burned_register"]["value"]["uid"]}
        call = bt.calls.SubtensorModule.burned_register(netuid=netuid, hotkey=hotkey)
        out = executed(sub.submit_call(call, wallet))
        out["uid"] = uid_of_hotkey()
        return out

    def fund_hotkey():
        # The hotkey signs serve_axon and set_weights. Both are free (Pays::No), but FRAME's
        # CheckNonce refuses any signer whose account does not exist, so the hotkey needs the
        # existential deposit: a miner funds it once, as here.
        # The SDK 11.3 pins the shielded carrier's nonce in its nonce cache, not the inner
        # extrinsic's (one above): after the shielded BurnedRegister, the coldkey's next extrinsic
        # in the same session is refused once as stale, and the SDK drops its cache. The same
        # happens on finney; a client signs again, as the SDK's message says.
        intent = bt.Transfer(dest_ss58=hotkey, amount_tao=bt.tao(args.fund_tao))
        result = sub.execute(intent, wallet)
        retried = not result.success and "nonce is below" in (result.message or "")
        if retried:
            result = sub.execute(intent, wallet)
        out = executed(result)
        out["stale_nonce_retried"] = retried
        out["free_rao"] = sub.balances.get(hotkey).rao
        return out

    def serve_axon():
        out = executed(
            sub.execute(bt.ServeAxon(netuid=netuid, ip=args.axon_ip, port=args.axon_port), wallet)
        )
        return out

    def add_stake():
        before = sub.staking.get(wallet.coldkey.ss58_address, hotkey, netuid)
        out = executed(
            sub.execute(
                bt.AddStake(hotkey_ss58=hotkey, netuid=netuid, amount_tao=bt.tao(args.stake_tao)),
                wallet,
            )
        )
        after = sub.staking.get(wallet.coldkey.ss58_address, hotkey, netuid)
        if after.rao <= before.rao:
            raise RuntimeError(f"stake did not grow: {before} -> {after}")
        out["stake_rao"] = after.rao
        return out

    def owner_set_min_allowed_weights():
        # New subnets require 1024 weights per set (subtensor's default); the SDK checks this
        # before signing, so on a small subnet the owner lowers it first.
        owner = DevWallet(args.owner, args.owner)
        out = executed(
            sub.execute(
                bt.SetHyperparameter(netuid=netuid, name="min_allowed_weights", value=1), owner
            )
        )
        out["min_allowed_weights"] = sub.hyperparameters.min_allowed_weights(netuid)
        return out

    weights_set = {}

    def set_weights():
        # Registration starts the weights rate limit (LastUpdate = registration block): wait it
        # out as a validator would, then set weights.
        my_uid = uid_of_hotkey()
        limit = sub.hyperparameters.weights_rate_limit(netuid)
        since = sub.epochs.blocks_since_last_update(netuid, my_uid)
        if since is not None and since < limit:
            sub.wait_for_block(sub.block + (limit - since), timeout=args.wait_s)
        mg = sub.subnets.metagraph(netuid)
        uids = [n.uid for n in mg]
        # Uneven weights over every uid, so that the read-back can be checked for order.
        weights = [float(i + 1) for i in range(len(uids))]
        weights_set.update(zip(uids, weights))
        out = executed(sub.execute(bt.SetWeights(netuid=netuid, uids=uids, weights=weights), wallet))
        out["uids"] = uids
        out["weights"] = weights
        return out

    def read_weights():
        my_uid = uid_of_hotkey()
        rows = sub.weights.weights(netuid)
        row = rows.get(my_uid)
        if not row:
            raise RuntimeError(f"no weights row for uid {my_uid}: {rows}")
        # The SDK reads weights back as shares of the row (they sum to 1): compare proportions.
        total = sum(weights_set.values())
        for uid, w in weights_set.items():
            got = row.get(uid, 0.0)
            if abs(got - w / total) > 1e-3:
                raise RuntimeError(f"uid {uid}: read {got}, set {w / total} (row {row})")
        return {"uid": my_uid, "row": {str(k): v for k, v in sorted(row.items())}}

    run("block", lambda: sub.block)
    run("metagraph", metagraph)
    run("burned_register", burned_register)
    run("burned_register_unshielded", burned_register_unshielded)
    run("fund_hotkey", fund_hotkey)
    run("serve_axon", serve_axon)
    run("add_stake", add_stake)
    run("owner_set_min_allowed_weights", owner_set_min_allowed_weights)
    run("set_weights", set_weights)
    run("read_weights", read_weights)
    run("metagraph_after", metagraph)

    passed = [k for k, v in ops.items() if v["ok"]]
    failed = [k for k, v in ops.items() if not v["ok"]]
    print(json.dumps({"sdk": bt.__version__, "hotkey": hotkey, "passed": passed, "failed": failed, "ops": ops}), flush=True)
    try:
        sub.close()
    except Exception:  # noqa: BLE001
        pass
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
