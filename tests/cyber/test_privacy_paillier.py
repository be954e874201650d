"""Paillier through phe: key sizes, fixed point, pooled obfuscators, homomorphic operations, CRT decryption."""

from __future__ import annotations

import pytest

from cyber.errors import CyberError
from cyber.privacy.paillier import (
    FRACTION_BITS,
    ObfuscatorPool,
    add,
    check_key_bits,
    decrypt_without_crt,
    encode,
    encrypt,
    generate_keys,
    multiply,
    slots,
    unpack,
)


@pytest.mark.parametrize("bits", [512, 1016, 1000, 0, -2048, "2048", 2048.0, True])
def test_keys_below_1024_bits_or_not_integers_are_refused(bits):
    with pytest.raises(CyberError, match="key_bits"):
        check_key_bits(bits)


def test_1024_and_2048_bits_are_accepted():
    assert check_key_bits(1024) == 1024 and check_key_bits(2048) == 2048


def test_fixed_point_precision_is_as_documented():
    for x in (0.0, 1e-3, -0.123456789012, 3.5, -700.25):
        assert abs(encode(x) / 2**FRACTION_BITS - x) <= 2.0 ** -(FRACTION_BITS + 1)


def test_operations_agree_with_phe_and_crt_with_the_textbook_decryption():
    # 1024 bits: the test is about the arithmetic, not the security
    keys = generate_keys(1, 1024)[0]
    pool = ObfuscatorPool(keys.public, batch=4)
    x, y, k = encode(-0.75), encode(0.3125), -12345
    cx, cy = encrypt(keys.public, x, pool.take()), encrypt(keys.public, y, pool.take())
    assert cx != encrypt(keys.public, x, pool.take())  # fresh obfuscator, fresh ciphertext
    assert keys.decrypt(cx) == x and keys.decrypt(cy) == y
    assert keys.decrypt(add(keys.public, cx, cy)) == x + y
    assert keys.decrypt(multiply(keys.public, cx, k)) == k * x
    # phe's own encryption decrypts the same through our signed decoding
    assert keys.decrypt(keys.public.encrypt(-987654321).ciphertext()) == -987654321
    c = multiply(keys.public, add(keys.public, cx, cy), 7)
    assert decrypt_without_crt(keys, c) == keys.decrypt(c) == 7 * (x + y)
    assert pool.prepare_s > 0


def test_values_encrypted_in_their_slots_add_up_to_one_ciphertext_that_unpacks_to_each():
    keys = generate_keys(1, 1024)[0]
    pk = keys.public
    values = [-(2**79) + 1, 2**79 - 1, 0, -1, 1, -123456789, 987654321987]
    assert slots(pk, 80) == 12
    pool = ObfuscatorPool(pk, batch=len(values))
    packed = encrypt(pk, 0, pool.take())
    for j, v in enumerate(values):
        packed = add(pk, packed, encrypt(pk, v << (80 * j), pool.take()))
    assert unpack(keys.decrypt(packed), len(values), 80) == values
    with pytest.raises(CyberError, match="overflowed"):
        unpack(keys.decrypt(encrypt(pk, 2**80, pool.take())), 1, 80)
