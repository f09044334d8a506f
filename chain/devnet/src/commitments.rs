//! A `Commitments` pallet (index 18 as on finney) with `CommitmentOf` and `RevealedCommitments`,
//! the storage the SDK's metagraph read joins against its neurons. The types have `pallet_commitments`' SCALE shapes
//! (`Registration`, `CommitmentInfo`, `Data` with its 137 variants, bounded vectors as plain ones),
//! so a commitment written there decodes as finney's. The devnet has no `set_commitment` call yet:
//! the map stays empty unless genesis or a test writes it, which the SDK reads as "no commitments".

pub use pallet::*;

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations)]
pub mod pallet {
    use polkadot_sdk::frame_support::pallet_prelude::*;

    extern crate alloc;
    use alloc::vec::Vec;

    /// `pallet_commitments::types::Data`: one field of a commitment, in finney's variant order.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug)]
    pub enum Data {
        /// No data.
        None,
        /// Raw bytes, 0 long.
        Raw0([u8; 0]),
        /// Raw bytes, 1 long.
        Raw1([u8; 1]),
        /// Raw bytes, 2 long.
        Raw2([u8; 2]),
        /// Raw bytes, 3 long.
        Raw3([u8; 3]),
        /// Raw bytes, 4 long.
        Raw4([u8; 4]),
        /// Raw bytes, 5 long.
        Raw5([u8; 5]),
        /// Raw bytes, 6 long.
        Raw6([u8; 6]),
        /// Raw bytes, 7 long.
        Raw7([u8; 7]),
        /// Raw bytes, 8 long.
        Raw8([u8; 8]),
        /// Raw bytes, 9 long.
        Raw9([u8; 9]),
        /// Raw bytes, 10 long.
        Raw10([u8; 10]),
        /// Raw bytes, 11 long.
        Raw11([u8; 11]),
        /// Raw bytes, 12 long.
        Raw12([u8; 12]),
        /// Raw bytes, 13 long.
        Raw13([u8; 13]),
        /// Raw bytes, 14 long.
        Raw14([u8; 14]),
        /// Raw bytes, 15 long.
        Raw15([u8; 15]),
        /// Raw bytes, 16 long.
        Raw16([u8; 16]),
        /// Raw bytes, 17 long.
        Raw17([u8; 17]),
        /// Raw bytes, 18 long.
        Raw18([u8; 18]),
        /// Raw bytes, 19 long.
        Raw19([u8; 19]),
        /// Raw bytes, 20 long.
        Raw20([u8; 20]),
        /// Raw bytes, 21 long.
        Raw21([u8; 21]),
        /// Raw bytes, 22 long.
        Raw22([u8; 22]),
        /// Raw bytes, 23 long.
        Raw23([u8; 23]),
        /// Raw bytes, 24 long.
        Raw24([u8; 24]),
        /// Raw bytes, 25 long.
        Raw25([u8; 25]),
        /// Raw bytes, 26 long.
        Raw26([u8; 26]),
        /// Raw bytes, 27 long.
        Raw27([u8; 27]),
        /// Raw bytes, 28 long.
        Raw28([u8; 28]),
        /// Raw bytes, 29 long.
        Raw29([u8; 29]),
        /// Raw bytes, 30 long.
        Raw30([u8; 30]),
        /// Raw bytes, 31 long.
        Raw31([u8; 31]),
        /// Raw bytes, 32 long.
        Raw32([u8; 32]),
        /// Raw bytes, 33 long.
        Raw33([u8; 33]),
        /// Raw bytes, 34 long.
        Raw34([u8; 34]),
        /// Raw bytes, 35 long.
        Raw35([u8; 35]),
        /// Raw bytes, 36 long.
        Raw36([u8; 36]),
        /// Raw bytes, 37 long.
        Raw37([u8; 37]),
        /// Raw bytes, 38 long.
        Raw38([u8; 38]),
        /// Raw bytes, 39 long.
        Raw39([u8; 39]),
        /// Raw bytes, 40 long.
        Raw40([u8; 40]),
        /// Raw bytes, 41 long.
        Raw41([u8; 41]),
        /// Raw bytes, 42 long.
        Raw42([u8; 42]),
        /// Raw bytes, 43 long.
        Raw43([u8; 43]),
        /// Raw bytes, 44 long.
        Raw44([u8; 44]),
        /// Raw bytes, 45 long.
        Raw45([u8; 45]),
        /// Raw bytes, 46 long.
        Raw46([u8; 46]),
        /// Raw bytes, 47 long.
        Raw47([u8; 47]),
        /// Raw bytes, 48 long.
        Raw48([u8; 48]),
        /// Raw bytes, 49 long.
        Raw49([u8; 49]),
        /// Raw bytes, 50 long.
        Raw50([u8; 50]),
        /// Raw bytes, 51 long.
        Raw51([u8; 51]),
        /// Raw bytes, 52 long.
        Raw52([u8; 52]),
        /// Raw bytes, 53 long.
        Raw53([u8; 53]),
        /// Raw bytes, 54 long.
        Raw54([u8; 54]),
        /// Raw bytes, 55 long.
        Raw55([u8; 55]),
        /// Raw bytes, 56 long.
        Raw56([u8; 56]),
        /// Raw bytes, 57 long.
        Raw57([u8; 57]),
        /// Raw bytes, 58 long.
        Raw58([u8; 58]),
        /// Raw bytes, 59 long.
        Raw59([u8; 59]),
        /// Raw bytes, 60 long.
        Raw60([u8; 60]),
        /// Raw bytes, 61 long.
        Raw61([u8; 61]),
        /// Raw bytes, 62 long.
        Raw62([u8; 62]),
        /// Raw bytes, 63 long.
        Raw63([u8; 63]),
        /// Raw bytes, 64 long.
        Raw64([u8; 64]),
        /// Raw bytes, 65 long.
        Raw65([u8; 65]),
        /// Raw bytes, 66 long.
        Raw66([u8; 66]),
        /// Raw bytes, 67 long.
        Raw67([u8; 67]),
        /// Raw bytes, 68 long.
        Raw68([u8; 68]),
        /// Raw bytes, 69 long.
        Raw69([u8; 69]),
        /// Raw bytes, 70 long.
        Raw70([u8; 70]),
        /// Raw bytes, 71 long.
        Raw71([u8; 71]),
        /// Raw bytes, 72 long.
        Raw72([u8; 72]),
        /// Raw bytes, 73 long.
        Raw73([u8; 73]),
        /// Raw bytes, 74 long.
        Raw74([u8; 74]),
        /// Raw bytes, 75 long.
        Raw75([u8; 75]),
        /// Raw bytes, 76 long.
        Raw76([u8; 76]),
        /// Raw bytes, 77 long.
        Raw77([u8; 77]),
        /// Raw bytes, 78 long.
        Raw78([u8; 78]),
        /// Raw bytes, 79 long.
        Raw79([u8; 79]),
        /// Raw bytes, 80 long.
        Raw80([u8; 80]),
        /// Raw bytes, 81 long.
        Raw81([u8; 81]),
        /// Raw bytes, 82 long.
        Raw82([u8; 82]),
        /// Raw bytes, 83 long.
        Raw83([u8; 83]),
        /// Raw bytes, 84 long.
        Raw84([u8; 84]),
        /// Raw bytes, 85 long.
        Raw85([u8; 85]),
        /// Raw bytes, 86 long.
        Raw86([u8; 86]),
        /// Raw bytes, 87 long.
        Raw87([u8; 87]),
        /// Raw bytes, 88 long.
        Raw88([u8; 88]),
        /// Raw bytes, 89 long.
        Raw89([u8; 89]),
        /// Raw bytes, 90 long.
        Raw90([u8; 90]),
        /// Raw bytes, 91 long.
        Raw91([u8; 91]),
        /// Raw bytes, 92 long.
        Raw92([u8; 92]),
        /// Raw bytes, 93 long.
        Raw93([u8; 93]),
        /// Raw bytes, 94 long.
        Raw94([u8; 94]),
        /// Raw bytes, 95 long.
        Raw95([u8; 95]),
        /// Raw bytes, 96 long.
        Raw96([u8; 96]),
        /// Raw bytes, 97 long.
        Raw97([u8; 97]),
        /// Raw bytes, 98 long.
        Raw98([u8; 98]),
        /// Raw bytes, 99 long.
        Raw99([u8; 99]),
        /// Raw bytes, 100 long.
        Raw100([u8; 100]),
        /// Raw bytes, 101 long.
        Raw101([u8; 101]),
        /// Raw bytes, 102 long.
        Raw102([u8; 102]),
        /// Raw bytes, 103 long.
        Raw103([u8; 103]),
        /// Raw bytes, 104 long.
        Raw104([u8; 104]),
        /// Raw bytes, 105 long.
        Raw105([u8; 105]),
        /// Raw bytes, 106 long.
        Raw106([u8; 106]),
        /// Raw bytes, 107 long.
        Raw107([u8; 107]),
        /// Raw bytes, 108 long.
        Raw108([u8; 108]),
        /// Raw bytes, 109 long.
        Raw109([u8; 109]),
        /// Raw bytes, 110 long.
        Raw110([u8; 110]),
        /// Raw bytes, 111 long.
        Raw111([u8; 111]),
        /// Raw bytes, 112 long.
        Raw112([u8; 112]),
        /// Raw bytes, 113 long.
        Raw113([u8; 113]),
        /// Raw bytes, 114 long.
        Raw114([u8; 114]),
        /// Raw bytes, 115 long.
        Raw115([u8; 115]),
        /// Raw bytes, 116 long.
        Raw116([u8; 116]),
        /// Raw bytes, 117 long.
        Raw117([u8; 117]),
        /// Raw bytes, 118 long.
        Raw118([u8; 118]),
        /// Raw bytes, 119 long.
        Raw119([u8; 119]),
        /// Raw bytes, 120 long.
        Raw120([u8; 120]),
        /// Raw bytes, 121 long.
        Raw121([u8; 121]),
        /// Raw bytes, 122 long.
        Raw122([u8; 122]),
        /// Raw bytes, 123 long.
        Raw123([u8; 123]),
        /// Raw bytes, 124 long.
        Raw124([u8; 124]),
        /// Raw bytes, 125 long.
        Raw125([u8; 125]),
        /// Raw bytes, 126 long.
        Raw126([u8; 126]),
        /// Raw bytes, 127 long.
        Raw127([u8; 127]),
        /// Raw bytes, 128 long.
        Raw128([u8; 128]),
        /// A BLAKE2-256 hash.
        BlakeTwo256([u8; 32]),
        /// A SHA-256 hash.
        Sha256([u8; 32]),
        /// A Keccak-256 hash.
        Keccak256([u8; 32]),
        /// A SHA3-256 hash.
        ShaThree256([u8; 32]),
        /// A drand-timelocked payload.
        TimelockEncrypted {
            /// The ciphertext.
            encrypted: Vec<u8>,
            /// The drand round that opens it.
            reveal_round: u64,
        },
        /// Asks the chain to reset the hotkey's bonds.
        ResetBondsFlag,
        /// Raw bytes longer than 128.
        BigRaw(Vec<u8>),
    }

    /// `pallet_commitments::types::CommitmentInfo`.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug)]
    pub struct CommitmentInfo {
        /// The committed fields.
        pub fields: Vec<Data>,
    }

    /// `pallet_commitments::types::Registration`.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug)]
    pub struct Registration {
        /// Deposit held for the commitment.
        pub deposit: u64,
        /// Block of the commitment.
        pub block: u32,
        /// What was committed.
        pub info: CommitmentInfo,
    }

    /// The pallet.
    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config {}

    /// (netuid, hotkey) → the hotkey's commitment on the subnet.
    #[pallet::storage]
    pub type CommitmentOf<T: Config> =
        StorageDoubleMap<_, Identity, u16, Twox64Concat, T::AccountId, Registration, OptionQuery>;

    /// (netuid, hotkey) → revealed timelocked commitments: (bytes, drand round).
    #[pallet::storage]
    pub type RevealedCommitments<T: Config> =
        StorageDoubleMap<_, Identity, u16, Twox64Concat, T::AccountId, Vec<(Vec<u8>, u64)>, OptionQuery>;
}
