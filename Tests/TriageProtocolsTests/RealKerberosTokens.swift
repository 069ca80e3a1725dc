/// Real tokens from MIT Kerberos 1.20.1 (Debian krb5-gss-samples: `gss-client -spnego` against
/// `gss-server` with a throwaway lab KDC, realm LAB.TEST; `captures/lab/kerberos-probe` made them).
/// tshark 4.0 read the same ticket in the KDC's TGS-REP of that run: realm LAB.TEST, name-type
/// kRB5-NT-SRV-HST (3), SNameString host, rds01.lab.test.
enum RealKerberosTokens {
    /// The client's first token: SPNEGO negTokenInit, mechToken a KRB5 AP-REQ (738 bytes).
    static let clientHex: String =
        """
        608202de06062b0601050502a08202d2308202cea00d300b06092a864886f712010202a28202bb048202b7608202b306092a
        864886f71201020201006e8202a23082029ea003020105a10302010ea20703050020000000a38201b9618201b5308201b1a0
        03020105a10a1b084c41422e54455354a221301fa003020103a11830161b04686f73741b0e72647330312e6c61622e746573
        74a382017930820175a003020112a103020102a2820167048201634349d8e0e2960cf2fab4152c2654dd44893897e431eb8e
        65b5253ce1a7b45b516176329d12bc1a1fb50539e736d54dfa57e004689634fb82bcf225ee172c09a011d26d27de3cb9425b
        7942b36ec6c802ffaf5c14deb39737a2a985b410224ad672eb37903c1f968a49dd25dcd56cec11cf1c544558ca6448aea94b
        2bde7650969dabd504d204ac1ac6e3a02330298550a893ddbf9590db26a8bca4fed24e3411153501b5e2e2656bb118dd501a
        152d3ccda7d4a93145fc0a55e473fc8fd3693be324eb7690ac66e3ffbf28ddf9874485f4db94af34589aa085c693baabf71b
        a6e3724d2ade33c279cccbca3106880ded3b49ea27557b2782b466308670c0af2fd53d95386f73fd6863eb4617ac4551c5a8
        18100cee98c1b11c10c55e600837971e488fd332a3aa71bc9b7e7809e48da7c337a4c34554d3b3071b74d0a7ac25fe664082
        043084871ead1e2ef79c6c6e56d4e0036dd064ab371ade2f1de00d10828e5996a481cb3081c8a003020112a281c00481bdd5
        aa489150702d02a7bbbefb30d193cd981f6166821ffd067d40710faed94fcdf7252e28f4e1567a26b5f9eee98f2332f488dd
        8565804a1475701054f477004afe6e82771462456588f3bafc97673c8cdbaa9a8fb7b876f6fa5e8bfe19463c3038615380dd
        bd45332749a9bdbc01828bca2e2ddf8b78b309c038cbc25ca569e01bebfa427241c8ca0d1ec3631c6a7101d4f77450b41f14
        b895d7e28cd1f3778fb26fd5566fe5355f8fdced51b978955b658b21b5644e97fc9a5de80426
        """
    /// The server's answer: negTokenResp accept-completed with a KRB5 AP-REP (186 bytes).
    static let serverHex: String =
        """
        a181b73081b4a0030a0100a10b06092a864886f712010202a2819f04819c60819906092a864886f71201020202006f818930
        8186a003020105a10302010fa27a3078a003020112a271046f952cf50b743da07e378cbc5703fcd0c3e505d73b7898b1d48a
        dc91dc385261f267ae284cb871126a45eef211089700ca1e21747adf0ac9168df6f64a51045edab31965caad4fff453958ac
        bd643cc0d4832745b7ed20cf0b133d327b2b73c54c22e52b2f6e33ec77f30e0dcc841b54
        """

    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter(\.isHexDigit))
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16) ?? 0 }
    }
}
