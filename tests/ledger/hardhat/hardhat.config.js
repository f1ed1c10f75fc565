// Minimal Hardhat 2 config for fedledger's ledger tests: a local dev node, nothing to compile.
module.exports = {
  networks: {
    hardhat: { chainId: 31337 },
  },
};
