"""An RS256 key set and an access token for the JWT scenario, made with the openssl CLI.

usage: jwt.py PRIVATE.pem PUBLIC.pem OUT_DIR AUDIENCE  ->  OUT_DIR/jwks.json, OUT_DIR/token
"""
import base64, json, subprocess, sys, time

key, pub, out, audience = sys.argv[1:5]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
modulus = subprocess.run(["openssl", "rsa", "-pubin", "-in", pub, "-noout", "-modulus"], capture_output=True, text=True, check=True).stdout
n = bytes.fromhex(modulus.strip().split("=", 1)[1])
jwks = {"keys": [{"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(n), "e": b64((65537).to_bytes(3, "big"))}]}
open(f"{out}/jwks.json", "w").write(json.dumps(jwks))
now = int(time.time())
header = {"alg": "RS256", "typ": "at+jwt", "kid": "rs"}
claims = {"iss": "https://issuer.bench", "sub": "bench", "aud": audience, "iat": now, "exp": now + 7 * 24 * 3600, "scope": "mcp:read"}
signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(), capture_output=True, check=True).stdout
open(f"{out}/token", "w").write(f"{signing_input}.{b64(signature)}")
