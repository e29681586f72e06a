# Throwaway certificates for TLS tests, made with openssl.
#
# pki_make DIR  writes, valid for two days, P-256 keys:
#   DIR/ca.crt ca.key           a CA
#   DIR/server.crt server.key   signed by it, for IP 127.0.0.1 (SAN), serverAuth
#   DIR/client.crt client.key   signed by it, clientAuth
#   DIR/other-ca.crt            another CA, which signed nothing here

_pki_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

_pki_sign() { # DIR NAME CN EXT
    local d=$1 n=$2
    _pki_key "$d/$n.key" || return 1
    openssl req -new -key "$d/$n.key" -subj "/CN=$3" -out "$d/$n.csr" 2>/dev/null || return 1
    printf '%b' "$4" >"$d/$n.ext"
    openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/$n.ext" -out "$d/$n.crt" 2>/dev/null
}

pki_make() {
    local d=$1 c
    mkdir -p "$d"
    for c in ca other-ca; do
        _pki_key "$d/$c.key" &&
            openssl req -x509 -new -key "$d/$c.key" -subj "/CN=ocib test $c" -days 2 \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$d/$c.crt" 2>/dev/null ||
            { echo "pki_make: openssl failed for $c" >&2; return 1; }
    done
    _pki_sign "$d" server 127.0.0.1 \
        'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' &&
        _pki_sign "$d" client "ocib test client" \
            'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' ||
        { echo "pki_make: openssl failed to sign" >&2; return 1; }
}
