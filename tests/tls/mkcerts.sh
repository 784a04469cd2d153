#!/bin/sh
# mkcerts.sh DIR — the certificates the TLS tests use, made with the openssl
# CLI at test time (nothing secret is kept in the tree):
#
#   ca.pem            the test CA (RSA)                 trusted by the tests
#   rsa.pem/.key      RSA-2048 server, localhost + 127.0.0.1 + ::1, by ca
#   ec.pem/.key       EC P-256 server, same names, by ca ("EC PRIVATE KEY")
#   chain.pem/.key    EC P-256 server by an intermediate CA: leaf then
#                     intermediate in chain.pem; PKCS#8 key
#   untrusted.pem/.key  same names, by another CA nobody trusts
#   wrongname.pem/.key  by ca, but for other.example only
#   expired.pem/.key    by ca, valid only on 2020-01-01
#   both.pem          rsa.pem and rsa.key in one file
#   encrypted.key     rsa.key encrypted (refused)
#   rsa.der ec.der wrongname.der   the leaves in DER
#   other-ca.pem      the untrusting CA
#
# Made once per DIR: a second run with everything present does nothing.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
[ -f .done ] && exit 0
exec 3>openssl.log
ossl() { openssl "$@" 2>&3; }

cat > ext.cnf <<'CNF'
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[ wrong ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
[ inter ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
CNF

# CAs: self-signed, CA:TRUE (req -x509 adds it).
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
    -subj "/CN=llmproxy test CA"
ossl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem \
    -days 30 -subj "/CN=llmproxy untrusted CA"

# leaf NAME KEYOPTS CAKEY CAPEM EXT [x509 options...]
leaf() {
	name=$1 keyopt=$2 cakey=$3 capem=$4 ext=$5
	shift 5
	ossl req -new -newkey "$keyopt" -nodes -keyout "$name.key" -out "$name.csr" \
	    -subj "/CN=$name"
	ossl x509 -req -in "$name.csr" -CA "$capem" -CAkey "$cakey" -CAcreateserial \
	    -out "$name.pem" -extfile ext.cnf -extensions "$ext" "$@"
	rm -f "$name.csr"
}
leaf rsa rsa:2048 ca.key ca.pem leaf -days 30
ossl ecparam -name prime256v1 -out p256.param
leaf ec ec:p256.param ca.key ca.pem leaf -days 30
# "EC PRIVATE KEY" (traditional), as many servers have it.
ossl ec -in ec.key -out ec.key.tmp && mv ec.key.tmp ec.key
leaf untrusted rsa:2048 other-ca.key other-ca.pem leaf -days 30
leaf wrongname rsa:2048 ca.key ca.pem wrong -days 30

# An intermediate CA, and a leaf under it: chain.pem = leaf + intermediate.
leaf inter rsa:2048 ca.key ca.pem inter -days 30
leaf chainleaf ec:p256.param inter.key inter.pem leaf -days 30
cat chainleaf.pem inter.pem > chain.pem
ossl pkcs8 -topk8 -nocrypt -in chainleaf.key -out chain.key

# Expired: `openssl ca` takes explicit dates (x509 -days cannot go back).
mkdir -p ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
CNF
ossl req -new -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr \
    -subj "/CN=expired"
ossl ca -batch -config ca.cnf -in expired.csr -out expired.pem -notext \
    -startdate 20200101000000Z -enddate 20200102000000Z \
    -extfile ext.cnf -extensions leaf
rm -f expired.csr

cat rsa.pem rsa.key > both.pem
ossl pkey -in rsa.key -aes256 -passout pass:secret -out encrypted.key
# DER leaves for the IP address check's unit test.
for c in rsa wrongname ec; do ossl x509 -in $c.pem -outform DER -out $c.der; done
touch .done
