// The handshake is standard Noise: src/crypto/noise.ts reproduces published test vectors byte for byte
// (cacophony's Noise_XX and Noise_XXpsk3, snow's Noise_XXpsk0+psk3, all _25519_ChaChaPoly_BLAKE2b: every
// primitive, psk0 and the transport split), and its HMAC is RFC 2104 HMAC-BLAKE2b-512.
import test from 'ava';
import crypto from 'node:crypto';
import { sodiumReady, sodium } from '../../src/crypto/sodium';
import { HandshakeState, PROTOCOL_NAME, hmac, Initiator, Responder } from '../../src/crypto/noise';
import type { KeyPair } from '../../src/crypto/keys';

interface Vector {
  source: string;
  name: string;
  prologue: string;
  psks: string[];
  init_static: string;
  init_ephemeral: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string | null;
  /** [payload, ciphertext] in hex: three handshake messages, then transport messages, alternating sides. */
  messages: [string, string][];
}

// Published vectors, copied from the cacophony and snow vector files (hex strings).
const VECTORS: Vector[] = [
  {
    "source": "cacophony",
    "name": "Noise_XX_25519_ChaChaPoly_BLAKE2b",
    "prologue": "4a6f686e2047616c74",
    "psks": [],
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "handshake_hash": "8cf47d7b3cb5804c0109d48e8bcdbee2cbb65687d8ea2c92994ca361fb86151ad93627b98936cbb32de56e8abb21def3925011ac3e35db9cbeea73ab9a4392c2",
    "messages": [
      [
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573"
      ],
      [
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088430505b6745ce64a5f33f0e8e3b83f11ce8802bca507f4f2d8b564dbe277e1966116e132faa2dfd70b8b077b9f94b913df5056ae1319469b824a98d54bbaa82c325595587064f978c4b6d104f7596e6f"
      ],
      [
        "462e20412e20486179656b",
        "99579e1c1ee15e422a57ddd6b16d37087b17558e8369c18991b4b2ca3a824abf904cdcf5458b5431a75af034ca9e9b982de039eaaf156775e2d580cd4e5ebae89c3f8cb2594b556d8a8169"
      ],
      [
        "4361726c204d656e676572",
        "fc56eea290b3f3a21aac0c70cd5787b5ee99be37d2f4d751329b55"
      ],
      [
        "4a65616e2d426170746973746520536179",
        "bb31c9da10d5639a4cdb88a12f5c61de41bbc7df09bf75d94f8184fe4157f5c68f"
      ],
      [
        "457567656e2042f6686d20766f6e2042617765726b",
        "f6199cadb152fb27f82be0a0891ec76a33598ae92a46cab2fb5a8ed5bf48b7f267f8370af7"
      ]
    ]
  },
  {
    "source": "cacophony",
    "name": "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
    "prologue": "4a6f686e2047616c74",
    "psks": [
      "54686973206973206d7920417573747269616e20706572737065637469766521"
    ],
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "handshake_hash": "46b5997dfa51492ae9be5b611748455e83aebdbc2ea3c47d264ec6dd408cc076e962ff056890c60398fe3e7a430bbe057f34383a84df9ff99391266dcfd638b0",
    "messages": [
      [
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440aa831d1e3bbd16bd7ffda87e9f7b6eeca2510006499a573ac27af3392ed1b69"
      ],
      [
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381a78489d56c9e2ac962826f25684980b25244dbfd505b7d903a94d4f4fd84004a1c7fbe94d686bc4c1f67259364f6f2a41cb40bf5198b9b3975be2cdd49d3e065a554e12c477d82029fabc6555bc1"
      ],
      [
        "462e20412e20486179656b",
        "291dfeff6eff386e29adb0bdbd5a1ae9e09de4449c8695d109adcb63e80e489555792a3e9150eff75d6d45571f824ed231173cb66e31e7da914241f86d0cbb678335ffe768a7445d2f5bc1"
      ],
      [
        "4361726c204d656e676572",
        "6579dd60eb5e6a8b29dd60004289f5d3c2f69fcdbf683a869f59a8"
      ],
      [
        "4a65616e2d426170746973746520536179",
        "24715fd39c3c7606e81b26e69e47b54d043d9d87c512f9417bae51ab48ebb17722"
      ],
      [
        "457567656e2042f6686d20766f6e2042617765726b",
        "e49194a013d873712318643acbf0e3851086326bb168c500a766439ff543a7a1e2deb3215c"
      ]
    ]
  },
  {
    "source": "snow",
    "name": "Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b",
    "prologue": "5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e6420626f72696e672e",
    "psks": [
      "5899c838e3fab6f82aff5ea763df9d16da970e9a2b5cc17a3363c18861187bf1",
      "6f094c3502a7cddaa0c3d48172cc7049782117a666cfe1d3af24cb7f87ffdfb3"
    ],
    "init_static": "072273f67d8e3c123ad38972886a1e9531a335e928dd496d8556aa0bc204562d",
    "init_ephemeral": "040d96481fb07669a6bf8fb7d92b6f709f814a9b453e73b7926e3ef23a010e7e",
    "resp_static": "60c6a91bf156b40180607dc955c4e3a3ed5cce324697229339196122f736ce2b",
    "resp_ephemeral": "ad5a289433133cdaeaaccadfbcf9b4369a5b077a3e7ef1775b5cdbd00b37b51e",
    "handshake_hash": null,
    "messages": [
      [
        "deef1fc110b5a2dc72b39c75e1fb6182e37339847aa617409377ab1a61a66f42",
        "c8d9686c8074336a686e5e02b53134db4433a3d70463aec023ee3ab8d9cd723edf389e951f9b432dc591571e138ed216db81be0dd23f0549bb1c3ba4e1ea381aaebfb9ffa0f12be9a1285287fbd50f37"
      ],
      [
        "5bf003cbea3f699e325e241ee52e2ff7be35a4b3dfd633a07f007be1311c8b3c",
        "e198463c8afa5c1a0ebac18d1ec0be9b52b43f9b9f3f0cca7d88ce145cb99177a1d86c519b244f66e15623e82b08c5fb071158f41065eb8027f2b9ae04e60bc841b7d6a79713d95da016c6c13f3743ad4bd3c636103c6c492472584beb537e6ae002a4afd42456e1d5c495bf096c41e578aeb62d237fbdbe4f178f3f04e1142a"
      ],
      [
        "98ef3063779469c1112bf3e94bcffae0f163b13bf7b179388edfe1f2d3f498f0",
        "355e9b7e519304f59990c454984aceffae5d62cb4902bbf14a778420d7293ef3fe719350b83a8deba086b53d367003b6e4e6a6682175b32a7bbfa99f76be36326ba0e39d86b1ec133ce9dce747f0512766693bc025f06b18c5a518112f79998c"
      ],
      [
        "c414ff7b3dc88e50d1e1222bde2115ce95626b406670423daab07cc3dbb06602",
        "82be8d457ffa95ebb5d2f0d7d220f74c333cb164189ba2f3a6f5bc75a4dc9ed4950decdac821493670acedec9de617bf"
      ],
      [
        "7eb2da319e16124f3f9d9d170f976e777cc9e051e9f209e1e126205783a95648",
        "89d8718cea3e12183ab18570739fa23c26edaca56a2cda5d27d8c4928af8e00f68740c488264dcae8ba6dd9223576f39"
      ]
    ]
  }
];

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function keyPair(priv: string): KeyPair {
  const privateKey = hex(priv);
  return { privateKey, publicKey: sodium().crypto_scalarmult_base(privateKey) };
}

function pskPositions(name: string): number[] {
  const m = /^Noise_XX((?:psk\d\+?)*)_/.exec(name)!;
  return [...m[1].matchAll(/psk(\d)/g)].map((x) => Number(x[1]));
}

test.before(async () => {
  await sodiumReady();
});

test('the protocol is named as the spec names it', (t) => {
  t.is(PROTOCOL_NAME, 'Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b');
});

test('HMAC is RFC 2104 HMAC-BLAKE2b-512 (as OpenSSL computes it)', (t) => {
  for (const [k, m] of [
    [64, 0],
    [64, 200],
    [0, 1],
    [32, 130],
    [129, 5],
  ]) {
    const key = crypto.randomBytes(k);
    const msg = crypto.randomBytes(m);
    t.is(toHex(hmac(key, msg)), crypto.createHmac('blake2b512', key).update(msg).digest('hex'), `key ${k} bytes, message ${m} bytes`);
  }
});

for (const v of VECTORS) {
  test(`${v.source} vector ${v.name}`, (t) => {
    const positions = pskPositions(v.name);
    const common = { prologue: hex(v.prologue), psks: v.psks.map(hex), pskPositions: positions, protocolName: v.name };
    const init = new HandshakeState({ ...common, initiator: true, s: keyPair(v.init_static), e: keyPair(v.init_ephemeral) });
    const resp = new HandshakeState({ ...common, initiator: false, s: keyPair(v.resp_static), e: keyPair(v.resp_ephemeral) });
    const sides = [init, resp];
    v.messages.slice(0, 3).forEach(([payload, ciphertext], i) => {
      const [w, r] = i % 2 === 0 ? [sides[0], sides[1]] : [sides[1], sides[0]];
      t.is(toHex(w.writeMessage(hex(payload))), ciphertext, `handshake message ${i + 1} written`);
      t.is(toHex(r.readMessage(hex(ciphertext))), payload, `handshake message ${i + 1} read`);
    });
    if (v.handshake_hash) {
      t.is(toHex(init.handshakeHash), v.handshake_hash);
      t.is(toHex(resp.handshakeHash), v.handshake_hash);
    }
    t.is(toHex(init.remoteStatic!), toHex(keyPair(v.resp_static).publicKey));
    t.is(toHex(resp.remoteStatic!), toHex(keyPair(v.init_static).publicKey));
    const [i2r, r2i] = init.split();
    const [i2rAtResp, r2iAtResp] = resp.split();
    let sentI = 0;
    let sentR = 0;
    v.messages.slice(3).forEach(([payload, ciphertext], j) => {
      // After XX's three messages the responder speaks first (message 4), then they alternate.
      if (j % 2 === 0) {
        t.is(toHex(r2iAtResp.seal(hex(payload))), ciphertext, `transport message ${j + 4}`);
        t.is(toHex(r2i.openAt(sentR++, hex(ciphertext))), payload);
      } else {
        t.is(toHex(i2r.seal(hex(payload))), ciphertext, `transport message ${j + 4}`);
        t.is(toHex(i2rAtResp.openAt(sentI++, hex(ciphertext))), payload);
      }
    });
  });
}

test('the Boxer framing wraps exactly the Noise messages of Noise_XXpsk0 with the prologue BXR+version', (t) => {
  const v = VECTORS.find((x) => x.name.startsWith('Noise_XXpsk0'))!;
  const psk = hex(v.psks[0]);
  const kI = keyPair(v.init_static);
  const kR = keyPair(v.resp_static);
  const eI = keyPair(v.init_ephemeral);
  const eR = keyPair(v.resp_ephemeral);
  const i = new Initiator(psk, kI, eI);
  const r = new Responder(psk, kR, eR);
  const m1 = i.message1();
  const m2 = r.message1(m1, new Uint8Array(0));
  const { message3, result } = i.message2(m2, Uint8Array.of(7));
  const atR = r.message3(message3);
  // The same three messages from a plain HandshakeState with the clear prologue as the Noise prologue.
  const prologue = m1.subarray(1, 5);
  const opts = { prologue, psks: [psk], pskPositions: [0], protocolName: PROTOCOL_NAME };
  const ref = new HandshakeState({ ...opts, initiator: true, s: kI, e: eI });
  const refR = new HandshakeState({ ...opts, initiator: false, s: kR, e: eR });
  t.is(toHex(m1.subarray(5)), toHex(ref.writeMessage(new Uint8Array(0))));
  refR.readMessage(m1.subarray(5));
  t.is(toHex(m2.subarray(1)), toHex(refR.writeMessage(new Uint8Array(0))));
  ref.readMessage(m2.subarray(1));
  t.is(toHex(message3.subarray(1)), toHex(ref.writeMessage(Uint8Array.of(7))));
  t.deepEqual([...atR.remotePayload], [7]);
  t.is(toHex(result.remoteStatic), toHex(kR.publicKey));
  t.is(toHex(result.send.seal(Uint8Array.of(1, 2))), toHex(atR.recv.seal(Uint8Array.of(1, 2))));
});
