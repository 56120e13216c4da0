#!/usr/bin/env bash
# tls.sh — `helios serve` over HTTPS with a throwaway CA: curl and the helios client (push, pull,
# a node whose backend is the TLS server) verify the certificate; a wrong or missing CA is
# refused, TLS below 1.2 too, and plain HTTP to the TLS port gets a clear error from helios;
# SIGHUP loads new certificate files (and keeps the old pair when the new files are bad); tokens
# beyond loopback without TLS are refused before anything starts.
helios=$1
. "$(dirname "$0")/testlib.sh" tls
cd "$t" || exit 1
ossl() { openssl "$@" 2>"$t/ossl.err" || { echo "FAIL: openssl $1: $(cat "$t/ossl.err")"; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=helios test CA"
ossl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=another CA"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
for n in 1 2; do
  ossl req -newkey rsa:2048 -nodes -keyout srv$n.key -out srv$n.csr -subj "/CN=helios-$n"
  ossl x509 -req -in srv$n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv$n.pem -days 2 -extfile ext
done
cp srv1.pem cert.pem; cp srv1.key key.pem
printf 'tls-test-admin-token-0001 admin\n' >tokens && chmod 600 tokens
tok=tls-test-admin-token-0001

# refused before anything starts
"$helios" --store s serve --listen 0.0.0.0:0 --token-file tokens 2>err; rc=$?
[ $rc = 2 ] && grep -q "clear text" err && ok || bad "tokens over plain HTTP beyond loopback: exit $rc: $(cat err)"
"$helios" --store s serve --tls-cert cert.pem 2>err; [ $? = 2 ] && grep -q "go together" err && ok || bad "--tls-cert without --tls-key: $(cat err)"
echo junk >junk.pem
"$helios" --store s serve --tls-cert junk.pem --tls-key key.pem 2>err; [ $? = 2 ] && grep -q "no PEM certificate" err && ok || bad "a bad certificate file: $(cat err)"

start_server "$t/s" --token-file tokens --tls-cert cert.pem --tls-key key.pem
grep -q "serving https://" serve.out && ok || bad "banner: $(cat serve.out)"
curl -sf --cacert ca.pem "$url/healthz" >/dev/null && ok || bad "curl with the CA"
echo "over tls" >blob
id=$(b3sum --no-names blob)
expect "PUT over TLS" 201 "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem -H "Authorization: Bearer $tok" -X PUT --data-binary @blob "$url/v1/blobs/$id")"
curl -sf --cacert ca.pem -H "Authorization: Bearer $tok" "$url/v1/blobs/$id" | cmp -s - blob && ok || bad "GET over TLS"
curl -s --cacert other.pem "$url/healthz" >/dev/null; expect "curl with another CA" 60 $?
curl -s "$url/healthz" >/dev/null; expect "curl without the CA" 60 $?
curl -s --cacert ca.pem --tlsv1.1 --tls-max 1.1 "$url/healthz" >/dev/null; expect "TLS 1.1" 35 $?
curl -s "http://${url#https://}/healthz" >/dev/null; rc=$?
[ $rc != 0 ] && ok || bad "plain HTTP to the TLS port answered"

# the helios client
mkdir -p w/d && echo one >w/a && echo two >w/d/b
HELIOS_TOKEN=$tok "$helios" --store c1 -q push w --remote "$url" --ref agents/1/main --cacert ca.pem >/dev/null && ok || bad "push over TLS"
HELIOS_TOKEN=$tok "$helios" --store c2 -q pull agents/1/main --remote "$url" --cacert ca.pem p1 && diff -r w p1 >/dev/null && ok || bad "pull over TLS"
HELIOS_TOKEN=$tok "$helios" --store c2 pull agents/1/main --remote "$url" --cacert other.pem p2 2>err; rc=$?
[ $rc = 5 ] && grep -q "not trusted" err && grep -q -- "--cacert" err && ok || bad "pull with another CA: exit $rc: $(cat err)"
HELIOS_TOKEN=$tok "$helios" --store c2 pull agents/1/main --remote "http://${url#https://}" p3 2>err; rc=$?
[ $rc = 5 ] && grep -q "https://" err && ok || bad "pull over plain HTTP from the TLS port: exit $rc: $(cat err)"
# a node whose durable backend is the TLS server
cat >node.conf <<EOF2
[tier]
backend = helios
remote-url = $url
remote-token = $tok
cacert = $t/ca.pem
l2-bytes = 0
EOF2
chmod 600 node.conf
echo "through a node" >nblob
nid=$("$helios" --store node --config node.conf put nblob | cut -c1-64) && ok || bad "put through a TLS backend"
curl -sf --cacert ca.pem -H "Authorization: Bearer $tok" "$url/v1/blobs/$nid" | cmp -s - nblob && ok || bad "the node's object is on the server"
sed -i 's|^cacert = .*|cacert = '"$t"'/other.pem|' node.conf
"$helios" --store node2 --config node.conf get "$id" >/dev/null 2>err; rc=$?
[ $rc != 0 ] && ok || bad "a node that does not trust the server's certificate read from it"

# SIGHUP: new files take over for new connections; bad files leave the old pair
subject() { echo | openssl s_client -connect "${url#https://}" -CAfile ca.pem 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
grep -q "helios-1" <<<"$(subject)" && ok || bad "first certificate: $(subject)"
cp srv2.pem cert.pem; cp srv2.key key.pem
kill -HUP "$pid"
wait_line serve.err "certificate reloaded"
grep -q "helios-2" <<<"$(subject)" && ok || bad "after SIGHUP: $(subject); $(cat serve.err)"
echo junk >cert.pem
kill -HUP "$pid"
wait_line serve.err "not reloaded" && grep -q "helios-2" <<<"$(subject)" && ok || bad "bad files on SIGHUP: $(subject); $(cat serve.err)"
curl -sf --cacert ca.pem "$url/healthz" >/dev/null && ok || bad "still serving after SIGHUPs"
stop_within "$pid"; expect "exit after SIGTERM" 0 $?; pid=
finish
