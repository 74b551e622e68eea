package check

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
)

// loadKeyPair is tls.LoadX509KeyPair with the SSL block's password for an
// encrypted key, as keepalived hands it to OpenSSL
// (SSL_CTX_set_default_passwd_cb in check_ssl.c): both forms OpenSSL
// writes are read, PKCS#8 "ENCRYPTED PRIVATE KEY" (PBES2: PBKDF2 with
// AES or 3DES, OpenSSL 3's default) and the traditional PEM encryption
// ("Proc-Type: 4,ENCRYPTED", `-traditional`, `openssl ec -aes128`).
func loadKeyPair(certFile, keyFile, password string) (tls.Certificate, error) {
	if password == "" {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	plain, err := decryptKeyPEM(keyPEM, []byte(password))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key %q: %w", keyFile, err)
	}
	return tls.X509KeyPair(certPEM, plain)
}

// decryptKeyPEM returns the first private key block of b decrypted with
// password, PEM-encoded; an unencrypted key is returned as it is.
func decryptKeyPEM(b, password []byte) ([]byte, error) {
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no private key in PEM")
		}
		switch {
		case blk.Type == "ENCRYPTED PRIVATE KEY":
			der, err := decryptPKCS8(blk.Bytes, password)
			if err != nil {
				return nil, err
			}
			return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
		case bytes.HasSuffix([]byte(blk.Type), []byte("PRIVATE KEY")):
			//lint:ignore SA1019 the legacy PEM encryption is insecure by design, but it is what OpenSSL's -traditional keys use and keepalived reads them
			if !x509.IsEncryptedPEMBlock(blk) {
				return pem.EncodeToMemory(blk), nil
			}
			//lint:ignore SA1019 see above
			der, err := x509.DecryptPEMBlock(blk, password)
			if err != nil {
				return nil, fmt.Errorf("decrypting the key (wrong SSL password?): %w", err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: der}), nil
		}
	}
}

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// RFC 8018 (PKCS #5 v2.1) structures.
type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF pkix.AlgorithmIdentifier
	Enc pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt      []byte
	Iter      int
	KeyLength int                      `asn1:"optional"`
	PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
}

// decryptPKCS8 decrypts a PKCS#8 EncryptedPrivateKeyInfo protected with
// PBES2 (RFC 8018 §6.2) and returns the PrivateKeyInfo DER.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 key: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted PKCS#8 key: scheme %v is not PBES2 (re-encrypt it with openssl pkcs8 -topk8 -v2 aes256)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("PBES2 parameters: %w", err)
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("PBES2 key derivation %v is not PBKDF2", params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("PBKDF2 parameters: %w", err)
	}
	var prf func() hash.Hash
	switch a := kdf.PRF.Algorithm; {
	case len(a) == 0 || a.Equal(oidHMACSHA1):
		prf = sha1.New
	case a.Equal(oidHMACSHA256):
		prf = sha256.New
	case a.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("PBKDF2 PRF %v not supported", a)
	}
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch a := params.Enc.Algorithm; {
	case a.Equal(oidAES128CBC):
		keyLen, newCipher = 16, aes.NewCipher
	case a.Equal(oidAES192CBC):
		keyLen, newCipher = 24, aes.NewCipher
	case a.Equal(oidAES256CBC):
		keyLen, newCipher = 32, aes.NewCipher
	case a.Equal(oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("PBES2 cipher %v not supported", a)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Enc.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("PBES2 cipher IV: %w", err)
	}
	if kdf.Iter <= 0 || kdf.Iter > 1<<24 {
		return nil, fmt.Errorf("PBKDF2 iteration count %d out of range", kdf.Iter)
	}
	key, err := pbkdf2.Key(prf, string(password), kdf.Salt, kdf.Iter, keyLen)
	if err != nil {
		return nil, err
	}
	blk, err := newCipher(key)
	if err != nil {
		return nil, err
	}
	bs := blk.BlockSize()
	if len(iv) != bs || len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, errors.New("encrypted PKCS#8 key: bad IV or data length")
	}
	out := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(blk, iv).CryptBlocks(out, info.Data)
	// PKCS#7 padding; a wrong password shows here (or in the parse below).
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errors.New("decrypting the key failed (wrong SSL password?)")
	}
	out = out[:len(out)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(out); err != nil {
		return nil, fmt.Errorf("decrypting the key failed (wrong SSL password?): %w", err)
	}
	return out, nil
}
