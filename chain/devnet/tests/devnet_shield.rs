//! The MEV shield end to end in the node: a ciphertext to the announced `NextKey` carries a signed
//! extrinsic that the author decrypts and includes right after its carrier; a replayed, tampered,
//! foreign-key or malformed one never executes its inner extrinsic and panics nothing.

use devnet::node::{Chain, GenesisParams, PoolError, genesis_storage};
use devnet::runtime::{Runtime, RuntimeCall, RuntimeEvent};
use devnet::shield::{self, ShieldKeys};
use devnet::signer::{dev_pair, sign};
use parity_scale_codec::Encode;
use polkadot_sdk::frame_system;
use polkadot_sdk::pallet_balances;
use polkadot_sdk::sp_core::Pair as _;
use polkadot_sdk::sp_runtime::{AccountId32, MultiAddress};

const AMOUNT: u64 = 3_000_000_000;

fn chain() -> Chain {
    let storage = genesis_storage(&GenesisParams {
        tempo: 10,
        dev_subnet: false,
        dev_subnet_commit_reveal: false,
    })
    .expect("genesis");
    Chain::new(storage)
}

fn carrier(
    ciphertext: Vec<u8>,
    bob: &polkadot_sdk::sp_core::sr25519::Pair,
    nonce: u32,
    genesis: polkadot_sdk::sp_core::H256,
) -> Vec<u8> {
    let call = RuntimeCall::MevShield(shield::Call::submit_encrypted {
        ciphertext: ciphertext.try_into().expect("ciphertext within 8192 bytes"),
    });
    sign(call, bob, nonce, genesis).encode()
}

#[test]
fn shielded_extrinsics_execute_once_and_bad_ciphertexts_never() {
    let mut chain = chain();
    let genesis = chain.genesis_hash();
    let bob = dev_pair("//Bob");
    let bob_id: AccountId32 = bob.public().into();
    let dest: AccountId32 = dev_pair("//shield/dest").public().into();
    chain.produce_block().expect("block 1");

    let next_key = chain
        .with_state(shield::NextKey::<Runtime>::get)
        .expect("NextKey announced");
    assert_eq!(next_key.len(), shield::MLKEM768_ENC_KEY_LEN);
    let expires = chain.with_state(shield::NextKeyExpiresAt::<Runtime>::get);
    assert_eq!(expires, Some(chain.head_number() + 3));

    // The inner extrinsic is signed at the nonce after its carrier's, as the SDK does.
    let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
        dest: MultiAddress::Id(dest.clone()),
        value: AMOUNT,
    });
    let inner = sign(transfer, &bob, 1, genesis).encode();
    let ciphertext = shield::encrypt(&next_key, &inner).expect("encrypt");
    chain
        .submit(&carrier(ciphertext.clone(), &bob, 0, genesis), None)
        .expect("carrier accepted");
    let produced = chain.produce_block().expect("block 2");
    let block = chain.block(&produced.hash).expect("block").clone();
    assert_eq!(block.extrinsics.len(), 3, "timestamp, carrier, inner");
    assert_eq!(
        block.extrinsics[2].encode(),
        inner,
        "the decrypted extrinsic follows its carrier"
    );
    let free =
        |chain: &mut Chain| chain.with_state(|| frame_system::Account::<Runtime>::get(&dest).data.free);
    assert_eq!(free(&mut chain), AMOUNT);
    let events = chain
        .with_state(frame_system::Pallet::<Runtime>::read_events_no_consensus)
        .map(|r| r.event.clone())
        .collect::<Vec<_>>();
    assert!(events.iter().any(|e| matches!(e, RuntimeEvent::MevShield(shield::Event::EncryptedSubmitted { who, .. }) if *who == bob_id)));
    assert!(events.iter().any(
        |e| matches!(e, RuntimeEvent::Balances(pallet_balances::Event::Transfer { to, .. }) if *to == dest)
    ));

    // Replayed in a new carrier: decrypts to a stale nonce, so only the carrier lands.
    chain
        .submit(&carrier(ciphertext, &bob, 2, genesis), None)
        .expect("replay carrier");
    let produced = chain.produce_block().expect("block 3");
    assert_eq!(produced.included, 1, "the replay's carrier alone");
    assert_eq!(free(&mut chain), AMOUNT, "the transfer did not execute twice");

    // Tampered anywhere past the key hash: the AEAD refuses it.
    let next_key = chain
        .with_state(shield::NextKey::<Runtime>::get)
        .expect("NextKey");
    let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
        dest: MultiAddress::Id(dest.clone()),
        value: AMOUNT,
    });
    let inner = sign(transfer, &bob, 4, genesis).encode();
    let mut tampered = shield::encrypt(&next_key, &inner).expect("encrypt");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    chain
        .submit(&carrier(tampered, &bob, 3, genesis), None)
        .expect("tampered carrier");
    // A key this author never announced.
    let foreign_key = ShieldKeys::new().announce();
    let foreign = shield::encrypt(&foreign_key, &inner).expect("encrypt");
    chain
        .submit(&carrier(foreign, &bob, 4, genesis), None)
        .expect("foreign-key carrier");
    let produced = chain.produce_block().expect("block 4");
    assert_eq!(produced.included, 2, "both carriers, neither inner extrinsic");
    assert_eq!(produced.dropped, 0);
    assert_eq!(free(&mut chain), AMOUNT);
    assert_eq!(chain.next_nonce(&bob_id), 5);

    // Not the shielded layout at all: refused in the pool (`FailedShieldedTxParsing`).
    match chain.submit(&carrier(vec![7; 20], &bob, 5, genesis), None) {
        Err(PoolError::Invalid(_)) => {}
        other => panic!("a malformed ciphertext is refused in the pool: {other:?}"),
    }
}
