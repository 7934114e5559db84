//! Regenerates the first 10,000,000 lines of the official ES6 number test
//! file of RFC 8785 (`es6testfile100m.txt`, cyberphone/json-canonicalization)
//! with our number formatter and checks the published SHA-256 of its first
//! 10^3 ... 10^7 lines.
//!
//! The file is deterministic: 168 hand-picked bit patterns, then the 2000
//! doubles from `0x0010000000000000` upward, then doubles taken from a
//! SHA-256 chain. Each line is `hex-bits,rendering\n`. This test needs no
//! vector files.

use sha2::{Digest, Sha256};
use syndicate_core::jcs;

/// The hand-picked 64-bit patterns of the generator (`staticU64s` in the
/// upstream test-data README): parameters of the algorithm, in order.
#[rustfmt::skip]
const STATIC_U64S: [u64; 168] = [
    0x0000_0000_0000_0000, 0x8000_0000_0000_0000, 0x0000_0000_0000_0001, 0x8000_0000_0000_0001,
    0xC466_9669_5DBD_1CC3, 0xC432_11ED_E497_4A35, 0xC3FC_E97C_A0F2_1056, 0xC3C7_2130_80C1_A6AC,
    0xC392_80F3_9A34_8556, 0xC35D_9B1F_5D20_D557, 0xC327_AF4C_4A80_AAAC, 0xC2F2_F2A3_6ECD_5556,
    0xC2BE_5105_7E15_5558, 0xC288_40D1_31AA_AAAC, 0xC253_670D_C155_5557, 0xC21F_0B49_3555_5557,
    0xC1E8_D5D4_2AAA_AAAC, 0xC1B3_DE43_5555_5556, 0xC17F_CA05_5555_5556, 0xC149_6E6A_AAAA_AAAB,
    0xC114_5855_5555_5555, 0xC0E0_46AA_AAAA_AAAB, 0xC0AA_0AAA_AAAA_AAAA, 0xC074_D555_5555_5555,
    0xC040_AAAA_AAAA_AAAB, 0xC00A_AAAA_AAAA_AAAB, 0xBFD5_5555_5555_5555, 0xBFA1_1111_1111_1111,
    0xBF6B_4E81_B4E8_1B4F, 0xBF35_D867_C3EC_E2A5, 0xBF01_79EC_9CBD_821E, 0xBECB_F647_612F_3696,
    0xBE96_5E9F_80F2_9212, 0xBE61_E54C_6728_74DB, 0xBE2C_A213_D840_BAF8, 0xBDF6_E80F_E033_C8C6,
    0xBDC2_533F_E68F_D3D2, 0xBD8D_51FF_D74C_861C, 0xBD57_74CC_AC3D_3817, 0xBD22_C3D6_F030_F9AC,
    0xBCEE_0624_B381_8F79, 0xBCB8_04EA_2934_72C7, 0xBC83_3721_BA90_5BD3, 0xBC4E_BE9C_5DB3_C61E,
    0xBC18_987D_17C3_04E5, 0xBBE3_AD30_DFCF_371D, 0xBBAF_7B81_6618_582F, 0xBB79_2F9A_B813_79BF,
    0xBB44_2615_600F_9499, 0xBB10_1E77_800C_76E1, 0xBAD9_CA58_CCE0_BE35, 0xBAA4_A1E0_A3E6_FE90,
    0xBA70_8180_831F_320D, 0xBA3A_68CD_9E98_5016, 0x4466_9669_5DBD_1CC3, 0x4432_11ED_E497_4A35,
    0x43FC_E97C_A0F2_1056, 0x43C7_2130_80C1_A6AC, 0x4392_80F3_9A34_8556, 0x435D_9B1F_5D20_D557,
    0x4327_AF4C_4A80_AAAC, 0x42F2_F2A3_6ECD_5556, 0x42BE_5105_7E15_5558, 0x4288_40D1_31AA_AAAC,
    0x4253_670D_C155_5557, 0x421F_0B49_3555_5557, 0x41E8_D5D4_2AAA_AAAC, 0x41B3_DE43_5555_5556,
    0x417F_CA05_5555_5556, 0x4149_6E6A_AAAA_AAAB, 0x4114_5855_5555_5555, 0x40E0_46AA_AAAA_AAAB,
    0x40AA_0AAA_AAAA_AAAA, 0x4074_D555_5555_5555, 0x4040_AAAA_AAAA_AAAB, 0x400A_AAAA_AAAA_AAAB,
    0x3FD5_5555_5555_5555, 0x3FA1_1111_1111_1111, 0x3F6B_4E81_B4E8_1B4F, 0x3F35_D867_C3EC_E2A5,
    0x3F01_79EC_9CBD_821E, 0x3ECB_F647_612F_3696, 0x3E96_5E9F_80F2_9212, 0x3E61_E54C_6728_74DB,
    0x3E2C_A213_D840_BAF8, 0x3DF6_E80F_E033_C8C6, 0x3DC2_533F_E68F_D3D2, 0x3D8D_51FF_D74C_861C,
    0x3D57_74CC_AC3D_3817, 0x3D22_C3D6_F030_F9AC, 0x3CEE_0624_B381_8F79, 0x3CB8_04EA_2934_72C7,
    0x3C83_3721_BA90_5BD3, 0x3C4E_BE9C_5DB3_C61E, 0x3C18_987D_17C3_04E5, 0x3BE3_AD30_DFCF_371D,
    0x3BAF_7B81_6618_582F, 0x3B79_2F9A_B813_79BF, 0x3B44_2615_600F_9499, 0x3B10_1E77_800C_76E1,
    0x3AD9_CA58_CCE0_BE35, 0x3AA4_A1E0_A3E6_FE90, 0x3A70_8180_831F_320D, 0x3A3A_68CD_9E98_5016,
    0x4024_0000_0000_0000, 0x4014_0000_0000_0000, 0x3FE0_0000_0000_0000, 0x3FA9_9999_9999_999A,
    0x3F74_7AE1_47AE_147B, 0x3F40_624D_D2F1_A9FC, 0x3F0A_36E2_EB1C_432D, 0x3ED4_F8B5_88E3_68F1,
    0x3EA0_C6F7_A0B5_ED8D, 0x3E6A_D7F2_9ABC_AF48, 0x3E35_798E_E230_8C3A, 0x3ED5_3922_3589_FA95,
    0x3ED4_FF26_CD5A_7781, 0x3ED4_F95A_7622_83FF, 0x3ED4_F8C6_0703_520C, 0x3ED4_F8B7_2F19_CD0D,
    0x3ED4_F8B5_B31C_0C8D, 0x3ED4_F8B5_8D1C_461A, 0x3ED4_F8B5_894F_7F0E, 0x3ED4_F8B5_88EE_37F3,
    0x3ED4_F8B5_88E4_7DA4, 0x3ED4_F8B5_88E3_849C, 0x3ED4_F8B5_88E3_6BB5, 0x3ED4_F8B5_88E3_6937,
    0x3ED4_F8B5_88E3_68F8, 0x3ED4_F8B5_88E3_68F1, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000,
    0xBFEF_FFFF_FFFF_FFFA, 0xBFEF_FFFF_FFFF_FFFB, 0x3FEF_FFFF_FFFF_FFFA, 0x3FEF_FFFF_FFFF_FFFB,
    0x3FEF_FFFF_FFFF_FFFC, 0x3FEF_FFFF_FFFF_FFFE, 0xBFEF_FFFF_FFFF_FFFF, 0xBFEF_FFFF_FFFF_FFFF,
    0x3FEF_FFFF_FFFF_FFFF, 0x3FEF_FFFF_FFFF_FFFF, 0x3FD3_3333_3333_3332, 0x3FD3_3333_3333_3333,
    0x3FD3_3333_3333_3334, 0x0010_0000_0000_0000, 0x000F_FFFF_FFFF_FFFD, 0x000F_FFFF_FFFF_FFFF,
    0x7FEF_FFFF_FFFF_FFFF, 0xFFEF_FFFF_FFFF_FFFF, 0x4340_0000_0000_0000, 0xC340_0000_0000_0000,
    0x4430_0000_0000_0000, 0x44B5_2D02_C7E1_4AF5, 0x44B5_2D02_C7E1_4AF6, 0x44B5_2D02_C7E1_4AF7,
    0x444B_1AE4_D6E2_EF4E, 0x444B_1AE4_D6E2_EF4F, 0x444B_1AE4_D6E2_EF50, 0x3EB0_C6F7_A0B5_ED8C,
    0x3EB0_C6F7_A0B5_ED8D, 0x41B3_DE43_5555_5553, 0x41B3_DE43_5555_5554, 0x41B3_DE43_5555_5555,
    0x41B3_DE43_5555_5556, 0x41B3_DE43_5555_5557, 0xBECB_F647_612F_3696, 0x4314_3FF3_C1CB_0959,
];

/// The published checksums: (lines, bytes, SHA-256 of those lines).
const CHECKPOINTS: [(usize, usize, &str); 5] = [
    (
        1_000,
        37_967,
        "be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687",
    ),
    (
        10_000,
        399_022,
        "b9f7a8e75ef22a835685a52ccba7f7d6bdc99e34b010992cbc5864cd12be6892",
    ),
    (
        100_000,
        4_031_728,
        "22776e6d4b49fa294a0d0f349268e5c28808fe7e0cb2bcbe28f63894e494d4c7",
    ),
    (
        1_000_000,
        40_357_417,
        "49415fee2c56c77864931bd3624faad425c3c577d6d74e89a83bc725506dad16",
    ),
    (
        10_000_000,
        403_630_048,
        "b9f8a44a91d46813b21b9602e72f112613c91408db0b8341fb94603d9db135e0",
    ),
];

/// The upstream generator: static patterns, then the serial run, then the
/// SHA-256 chain, skipping zeros, NaN and infinities in the chain.
struct Numbers {
    index: usize,
    block: [u8; 32],
    /// Doubles of the current block not yet used.
    pending: std::ops::Range<usize>,
}

impl Numbers {
    fn new() -> Self {
        Numbers {
            index: 0,
            block: [0; 32],
            pending: 4..4,
        }
    }
}

impl Iterator for Numbers {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let i = self.index;
        self.index += 1;
        if i < STATIC_U64S.len() {
            return Some(STATIC_U64S[i]);
        }
        if i < STATIC_U64S.len() + 2000 {
            return Some(0x0010_0000_0000_0000 + (i - STATIC_U64S.len()) as u64);
        }
        loop {
            let Some(k) = self.pending.next() else {
                self.block = Sha256::digest(self.block).into();
                self.pending = 0..4;
                continue;
            };
            let bits = u64::from_le_bytes(self.block[k * 8..k * 8 + 8].try_into().unwrap());
            let f = f64::from_bits(bits);
            if f != 0.0 && f.is_finite() {
                return Some(bits);
            }
        }
    }
}

/// Appends `bits` in lower-case hex without leading zeros.
fn push_hex(bits: u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - bits.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[((bits >> (shift * 4)) & 0xF) as usize]);
    }
}

#[test]
fn number_file_first_10m_lines_match_published_sha256() {
    let mut hasher = Sha256::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut bytes = 0usize;
    let mut checkpoints = CHECKPOINTS.iter().peekable();
    let mut lines = 0usize;
    for bits in Numbers::new() {
        push_hex(bits, &mut buffer);
        buffer.push(b',');
        jcs::write_number(f64::from_bits(bits), &mut buffer).unwrap();
        buffer.push(b'\n');
        lines += 1;
        let &&(at, size, expected) = checkpoints.peek().unwrap();
        if lines == at || buffer.len() >= (1 << 20) - 64 {
            hasher.update(&buffer);
            bytes += buffer.len();
            buffer.clear();
        }
        if lines == at {
            let got: String = hasher
                .clone()
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, expected, "sha-256 of the first {at} lines");
            assert_eq!(bytes, size, "size of the first {at} lines");
            checkpoints.next();
            if checkpoints.peek().is_none() {
                break;
            }
        }
    }
    assert_eq!(lines, 10_000_000);
}

#[test]
fn number_file_starts_with_the_upstream_sample_lines() {
    // The first lines of the upstream file, as the vectors README shows them.
    let expected = [
        "0,0",
        "8000000000000000,0",
        "1,5e-324",
        "8000000000000001,-5e-324",
        "c46696695dbd1cc3,-3.3333333333333335e+21",
    ];
    let mut numbers = Numbers::new();
    for want in expected {
        let bits = numbers.next().unwrap();
        let mut line = Vec::new();
        push_hex(bits, &mut line);
        line.push(b',');
        line.extend_from_slice(jcs::format_number(f64::from_bits(bits)).unwrap().as_bytes());
        assert_eq!(String::from_utf8(line).unwrap(), want);
    }
}
