# pragma version ~=0.4.3
"""
@title fedledger contribution token
@notice Accounts are member ids (bytes32), not addresses. The whole supply starts in the
        treasury; the authority grants stakes, pays a finalised round's rewards (checked
        against the rewards digest the validators agreed on) and penalises stakes back into
        the treasury. treasury + sum(balances) + sum(stakes) == total_supply at all times.
"""

interface Rounds:
    def round_status(r: uint256) -> uint8: view
    def finalised_rewards(r: uint256) -> bytes32: view

interface Registry:
    def member(mid: bytes32) -> (uint8, bytes32, uint32, uint8, address): view

MAX_PAYOUT: constant(uint256) = 256
STATUS_FINALISED: constant(uint8) = 2


event StakeGranted:
    id: indexed(bytes32)
    amount: uint256


event Paid:
    r: indexed(uint256)
    total: uint256


event Credited:
    r: indexed(uint256)
    id: indexed(bytes32)
    amount: uint256


event Penalised:
    r: indexed(uint256)
    id: indexed(bytes32)
    amount: uint256


authority: public(immutable(address))
rounds: public(immutable(address))
registry: public(immutable(address))
total_supply: public(immutable(uint256))
treasury: public(uint256)
balance_of: public(HashMap[bytes32, uint256])
stake_of: public(HashMap[bytes32, uint256])
paid: public(HashMap[uint256, bool])


@deploy
def __init__(rounds_: address, registry_: address, supply: uint256):
    authority = msg.sender
    rounds = rounds_
    registry = registry_
    total_supply = supply
    self.treasury = supply


@external
def grant_stake(mid: bytes32, amount: uint256):
    """
    @notice Move amount from the treasury to a registered member's stake.
    """
    assert msg.sender == authority, "only authority"
    status: uint8 = (staticcall Registry(registry).member(mid))[3]
    assert status != 0, "unknown member"
    assert amount <= self.treasury, "treasury too small"
    self.treasury -= amount
    self.stake_of[mid] += amount
    log StakeGranted(id=mid, amount=amount)


@external
def payout(r: uint256, ids: DynArray[bytes32, MAX_PAYOUT], amounts: DynArray[uint256, MAX_PAYOUT]):
    """
    @notice Pay round r's rewards from the treasury, once, if r is finalised and
            sha256(abi_encode(ids, amounts)) equals its finalised rewards digest. Emits
            Credited per entry, so balances can be rebuilt from events alone.
    """
    assert msg.sender == authority, "only authority"
    assert not self.paid[r], "already paid"
    assert staticcall Rounds(rounds).round_status(r) == STATUS_FINALISED, "round not finalised"
    assert len(ids) == len(amounts), "length mismatch"
    digest: bytes32 = sha256(abi_encode(ids, amounts))
    assert digest == staticcall Rounds(rounds).finalised_rewards(r), "rewards digest mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(ids), bound=MAX_PAYOUT):
        total += amounts[i]
        self.balance_of[ids[i]] += amounts[i]
        log Credited(r=r, id=ids[i], amount=amounts[i])
    assert total <= self.treasury, "treasury too small"
    self.treasury -= total
    self.paid[r] = True
    log Paid(r=r, total=total)


@external
def penalise(r: uint256, mid: bytes32, amount: uint256):
    """
    @notice Move min(amount, stake) of a member's stake back to the treasury.
    """
    assert msg.sender == authority, "only authority"
    taken: uint256 = min(amount, self.stake_of[mid])
    self.stake_of[mid] -= taken
    self.treasury += taken
    log Penalised(r=r, id=mid, amount=taken)
