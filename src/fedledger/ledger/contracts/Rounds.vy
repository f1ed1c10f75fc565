# pragma version ~=0.4.3
"""
@title fedledger rounds: gateway commitments and validator votes
@notice The authority opens round r on top of the latest finalised model; each active gateway
        commits one Merkle root; each active validator votes once on
        (model, accepted, rewards) digests. The first key whose tally reaches the quorum
        finalises the round. Later votes are still recorded, so an outvoted vote stays on chain.
"""

interface Registry:
    def validator_id(account: address) -> bytes32: view
    def gateway_id(account: address) -> bytes32: view
    def validator_count() -> uint256: view
    def validator_and_count(account: address) -> (bytes32, uint256): view

STATUS_NONE: constant(uint8) = 0
STATUS_OPEN: constant(uint8) = 1
STATUS_FINALISED: constant(uint8) = 2
STATUS_FAILED: constant(uint8) = 3


struct RoundInfo:
    status: uint8
    base: bytes32
    config: bytes32
    model: bytes32
    accepted: bytes32
    rewards: bytes32
    votes: uint256
    support: uint256
    commits: uint256


struct Digests:
    base: bytes32
    config: bytes32
    model: bytes32
    accepted: bytes32
    rewards: bytes32


event RoundOpened:
    r: indexed(uint256)
    base: bytes32
    config: bytes32


event RoundFailed:
    r: indexed(uint256)
    votes: uint256


event Committed:
    r: indexed(uint256)
    gateway: indexed(bytes32)
    root: bytes32
    count: uint256


event Voted:
    r: indexed(uint256)
    validator: indexed(bytes32)
    model: bytes32
    accepted: bytes32
    rewards: bytes32
    metrics: bytes32
    quote: bytes32
    agrees: bool


event Finalised:
    r: indexed(uint256)
    model: bytes32
    accepted: bytes32
    rewards: bytes32
    votes: uint256


# Per round, the counters live in one packed word, status | votes << 8 | support << 72 |
# commits << 136 (py-evm's cost is per storage slot touched, not per gas unit).
VOTES_SHIFT: constant(uint256) = 8
SUPPORT_SHIFT: constant(uint256) = 72
COMMITS_SHIFT: constant(uint256) = 136
COUNT_MASK: constant(uint256) = 18446744073709551615  # 2**64 - 1

authority: public(immutable(address))
registry: public(immutable(address))
quorum: public(immutable(uint256))
genesis_model: public(immutable(bytes32))
last_round: public(uint256)
latest_model: public(bytes32)
_state: HashMap[uint256, uint256]
_digests: HashMap[uint256, Digests]
_committed: HashMap[uint256, HashMap[bytes32, bool]]
_voted: HashMap[uint256, HashMap[bytes32, bool]]
_tally: HashMap[uint256, HashMap[bytes32, uint256]]
_final_key: HashMap[uint256, bytes32]


@deploy
def __init__(registry_: address, quorum_: uint256, genesis_model_: bytes32):
    """
    @param quorum_ Votes needed to finalise; 0 means ceil(2n/3) of the active validators.
    """
    authority = msg.sender
    registry = registry_
    quorum = quorum_
    genesis_model = genesis_model_
    self.latest_model = genesis_model_


@view
@internal
def _quorum_of(validators: uint256) -> uint256:
    if quorum != 0:
        return quorum
    return max((2 * validators + 2) // 3, 1)


@view
@external
def quorum_needed() -> uint256:
    """
    @notice Identical votes needed now to finalise a round.
    """
    return self._quorum_of(staticcall Registry(registry).validator_count())


@external
def open_round(r: uint256, base_digest: bytes32, config_digest: bytes32):
    """
    @notice Open round r = last_round + 1 on top of the latest finalised model. The previous
            round must be finalised, or every active validator must have voted on it without
            a quorum, in which case it is marked failed here.
    """
    assert msg.sender == authority, "only authority"
    assert r == self.last_round + 1, "round out of order"
    assert base_digest == self.latest_model, "base is not the latest model"
    if r > 1:
        previous: uint256 = self._state[r - 1]
        if previous & 255 == convert(STATUS_OPEN, uint256):
            votes: uint256 = (previous >> VOTES_SHIFT) & COUNT_MASK
            count: uint256 = staticcall Registry(registry).validator_count()
            assert votes > 0 and votes >= count, "previous round still open"
            self._state[r - 1] = previous - convert(STATUS_OPEN, uint256) + convert(
                STATUS_FAILED, uint256
            )
            log RoundFailed(r=r - 1, votes=votes)
    self.last_round = r
    self._state[r] = convert(STATUS_OPEN, uint256)
    self._digests[r].base = base_digest
    self._digests[r].config = config_digest
    log RoundOpened(r=r, base=base_digest, config=config_digest)


@external
def commit(r: uint256, root: bytes32, count: uint256):
    """
    @notice One Merkle root of accepted envelopes per active gateway while round r is open.
    """
    gateway: bytes32 = staticcall Registry(registry).gateway_id(msg.sender)
    assert gateway != empty(bytes32), "not a gateway"
    state: uint256 = self._state[r]
    assert state & 255 == convert(STATUS_OPEN, uint256), "round not open"
    assert not self._committed[r][gateway], "already committed"
    self._committed[r][gateway] = True
    self._state[r] = state + (1 << COMMITS_SHIFT)
    log Committed(r=r, gateway=gateway, root=root, count=count)


@external
def vote(
    r: uint256,
    model_digest: bytes32,
    accepted_digest: bytes32,
    rewards_digest: bytes32,
    metrics_digest: bytes32,
    quote_digest: bytes32,
):
    """
    @notice One vote per active validator on round r, open or already finalised. The
            agreement key is keccak256(model | accepted | rewards); metrics and quote are
            per-validator evidence kept with the vote.
    """
    validator: bytes32 = empty(bytes32)
    validators: uint256 = 0
    validator, validators = staticcall Registry(registry).validator_and_count(msg.sender)
    assert validator != empty(bytes32), "not a validator"
    state: uint256 = self._state[r]
    status: uint8 = convert(state & 255, uint8)
    assert status == STATUS_OPEN or status == STATUS_FINALISED, "round not open"
    assert not self._voted[r][validator], "already voted"
    self._voted[r][validator] = True
    state += 1 << VOTES_SHIFT
    key: bytes32 = keccak256(concat(model_digest, accepted_digest, rewards_digest))
    tally: uint256 = self._tally[r][key] + 1
    self._tally[r][key] = tally
    agrees: bool = False
    if status == STATUS_FINALISED:
        agrees = key == self._final_key[r]
        if agrees:
            state += 1 << SUPPORT_SHIFT
    elif tally >= self._quorum_of(validators):
        agrees = True
        self._final_key[r] = key
        self._digests[r].model = model_digest
        self._digests[r].accepted = accepted_digest
        self._digests[r].rewards = rewards_digest
        self.latest_model = model_digest
        state = (
            (state & ~convert(255, uint256))
            | convert(STATUS_FINALISED, uint256)
            | (tally << SUPPORT_SHIFT)
        )
    self._state[r] = state
    log Voted(
        r=r,
        validator=validator,
        model=model_digest,
        accepted=accepted_digest,
        rewards=rewards_digest,
        metrics=metrics_digest,
        quote=quote_digest,
        agrees=agrees,
    )
    if agrees and status == STATUS_OPEN:
        log Finalised(
            r=r, model=model_digest, accepted=accepted_digest, rewards=rewards_digest, votes=tally
        )


@view
@external
def round_status(r: uint256) -> uint8:
    """
    @notice 0 none, 1 open, 2 finalised, 3 failed.
    """
    return convert(self._state[r] & 255, uint8)


@view
@external
def round_info(r: uint256) -> RoundInfo:
    """
    @notice Everything the contract keeps about round r; votes counts every vote,
            support the votes for the finalised key.
    """
    state: uint256 = self._state[r]
    d: Digests = self._digests[r]
    return RoundInfo(
        status=convert(state & 255, uint8),
        base=d.base,
        config=d.config,
        model=d.model,
        accepted=d.accepted,
        rewards=d.rewards,
        votes=(state >> VOTES_SHIFT) & COUNT_MASK,
        support=(state >> SUPPORT_SHIFT) & COUNT_MASK,
        commits=(state >> COMMITS_SHIFT) & COUNT_MASK,
    )


@view
@external
def finalised_rewards(r: uint256) -> bytes32:
    """
    @notice The rewards digest of round r if it is finalised, else zero.
    """
    if self._state[r] & 255 != convert(STATUS_FINALISED, uint256):
        return empty(bytes32)
    return self._digests[r].rewards


@view
@external
def has_voted(r: uint256, validator: bytes32) -> bool:
    return self._voted[r][validator]


@view
@external
def has_committed(r: uint256, gateway: bytes32) -> bool:
    return self._committed[r][gateway]
