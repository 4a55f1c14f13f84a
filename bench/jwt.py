"""A key set and access tokens for the JWT scenarios, made with the openssl CLI.

usage: jwt.py OUT_DIR AUDIENCE
  reads  OUT_DIR/rs.key, rs.pub (RSA 2048) and OUT_DIR/es.key, es.pub (P-256), PEM
  writes OUT_DIR/jwks.json (both public keys), OUT_DIR/token-RS256 and OUT_DIR/token-ES256
"""
import base64, json, subprocess, sys, time

out, audience = sys.argv[1:3]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
openssl = lambda *args, data=None: subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout

modulus = openssl("rsa", "-pubin", "-in", f"{out}/rs.pub", "-noout", "-modulus").decode()
n = bytes.fromhex(modulus.strip().split("=", 1)[1])
# A P-256 SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
point = openssl("pkey", "-pubin", "-in", f"{out}/es.pub", "-outform", "DER")[-65:]
jwks = {"keys": [
    {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(n), "e": b64((65537).to_bytes(3, "big"))},
    {"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "use": "sig", "x": b64(point[1:33]), "y": b64(point[33:])},
]}
open(f"{out}/jwks.json", "w").write(json.dumps(jwks))


def der_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to JWS's fixed r || s."""
    assert der[0] == 0x30
    at = 3 if der[1] & 0x80 else 2
    values = []
    for _ in range(2):
        assert der[at] == 0x02
        length = der[at + 1]
        values.append(int.from_bytes(der[at + 2:at + 2 + length], "big"))
        at += 2 + length
    return b"".join(v.to_bytes(32, "big") for v in values)


now = int(time.time())
claims = {"iss": "https://issuer.bench", "sub": "bench", "aud": audience, "iat": now, "exp": now + 7 * 24 * 3600, "scope": "mcp:read"}
for alg, kid in (("RS256", "rs"), ("ES256", "es")):
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = openssl("dgst", "-sha256", "-sign", f"{out}/{kid}.key", data=signing_input.encode())
    if alg == "ES256":
        signature = der_to_raw(signature)
    open(f"{out}/token-{alg}", "w").write(f"{signing_input}.{b64(signature)}")
