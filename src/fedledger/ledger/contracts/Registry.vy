# pragma version ~=0.4.3
"""
@title fedledger member registry
@notice Devices, gateways and validators keyed by a 32-byte id that fedledger computes off
        chain, plus the enclave measurements validators may attest to. Only the authority
        (the deployer) writes; anyone reads.
"""

ROLE_DEVICE: constant(uint8) = 1
ROLE_GATEWAY: constant(uint8) = 2
ROLE_VALIDATOR: constant(uint8) = 3
STATUS_ACTIVE: constant(uint8) = 1
STATUS_REVOKED: constant(uint8) = 2
MAX_BATCH: constant(uint256) = 64


struct Member:
    role: uint8
    key: bytes32
    cluster: uint32
    status: uint8
    account: address


event Registered:
    id: indexed(bytes32)
    role: uint8
    key: bytes32
    cluster: uint32
    account: address


event StatusChanged:
    id: indexed(bytes32)
    status: uint8


event MeasurementRegistered:
    measurement: indexed(bytes32)


event MeasurementRevoked:
    measurement: indexed(bytes32)


# A member takes two storage slots: its key, and role | status << 8 | cluster << 16 |
# account << 48 packed in one word (py-evm's cost is per slot touched, not per gas unit).
authority: public(immutable(address))
member_count: public(uint256)
_packed: HashMap[bytes32, uint256]
_keys: HashMap[bytes32, bytes32]
_by_account: HashMap[address, bytes32]
_active_validators: uint256
_measurements: HashMap[bytes32, bool]


@deploy
def __init__():
    authority = msg.sender


@external
def register_many(
    ids: DynArray[bytes32, MAX_BATCH],
    roles: DynArray[uint8, MAX_BATCH],
    keys: DynArray[bytes32, MAX_BATCH],
    clusters: DynArray[uint32, MAX_BATCH],
    accounts: DynArray[address, MAX_BATCH],
):
    """
    @notice Register up to 64 members, all active. Reverts on a known id, a reused account,
            a device with an account, a gateway/validator without one, or unequal lengths.
    """
    assert msg.sender == authority, "only authority"
    n: uint256 = len(ids)
    assert len(roles) == n, "length mismatch"
    assert len(keys) == n, "length mismatch"
    assert len(clusters) == n, "length mismatch"
    assert len(accounts) == n, "length mismatch"
    validators: uint256 = 0
    for i: uint256 in range(n, bound=MAX_BATCH):
        mid: bytes32 = ids[i]
        role: uint8 = roles[i]
        account: address = accounts[i]
        assert mid != empty(bytes32), "empty id"
        assert self._packed[mid] == 0, "already registered"
        assert role >= ROLE_DEVICE and role <= ROLE_VALIDATOR, "bad role"
        if role == ROLE_DEVICE:
            assert account == empty(address), "device has an account"
        else:
            assert account != empty(address), "account required"
            assert self._by_account[account] == empty(bytes32), "account already used"
            self._by_account[account] = mid
            if role == ROLE_VALIDATOR:
                validators += 1
        self._packed[mid] = self._pack(role, STATUS_ACTIVE, clusters[i], account)
        self._keys[mid] = keys[i]
        log Registered(id=mid, role=role, key=keys[i], cluster=clusters[i], account=account)
    self.member_count += n
    self._active_validators += validators


@external
def set_status(mid: bytes32, status: uint8):
    """
    @notice Revoke (2) or reactivate (1) a registered member.
    """
    assert msg.sender == authority, "only authority"
    assert status == STATUS_ACTIVE or status == STATUS_REVOKED, "bad status"
    packed: uint256 = self._packed[mid]
    assert packed != 0, "unknown member"
    if self._status(packed) == status:
        return
    self._packed[mid] = (packed & ~convert(65280, uint256)) | (convert(status, uint256) << 8)
    if self._role(packed) == ROLE_VALIDATOR:
        if status == STATUS_ACTIVE:
            self._active_validators += 1
        else:
            self._active_validators -= 1
    log StatusChanged(id=mid, status=status)


@pure
@internal
def _pack(role: uint8, status: uint8, cluster: uint32, account: address) -> uint256:
    return (
        convert(role, uint256)
        | (convert(status, uint256) << 8)
        | (convert(cluster, uint256) << 16)
        | (convert(account, uint256) << 48)
    )


@pure
@internal
def _role(packed: uint256) -> uint8:
    return convert(packed & 255, uint8)


@pure
@internal
def _status(packed: uint256) -> uint8:
    return convert((packed >> 8) & 255, uint8)


@view
@external
def member(mid: bytes32) -> Member:
    """
    @notice The member record; status 0 means unknown.
    """
    packed: uint256 = self._packed[mid]
    return Member(
        role=self._role(packed),
        key=self._keys[mid],
        cluster=convert((packed >> 16) & 4294967295, uint32),
        status=self._status(packed),
        account=convert(convert(packed >> 48, uint160), address),
    )


@view
@internal
def _active_id(account: address, role: uint8) -> bytes32:
    mid: bytes32 = self._by_account[account]
    if mid == empty(bytes32):
        return empty(bytes32)
    packed: uint256 = self._packed[mid]
    if self._role(packed) != role or self._status(packed) != STATUS_ACTIVE:
        return empty(bytes32)
    return mid


@view
@external
def validator_id(account: address) -> bytes32:
    """
    @notice Id of the active validator using this account, or zero.
    """
    return self._active_id(account, ROLE_VALIDATOR)


@view
@external
def validator_and_count(account: address) -> (bytes32, uint256):
    """
    @notice validator_id(account) and validator_count() in one call (saves Rounds.vote a call).
    """
    return self._active_id(account, ROLE_VALIDATOR), self._active_validators


@view
@external
def gateway_id(account: address) -> bytes32:
    """
    @notice Id of the active gateway using this account, or zero.
    """
    return self._active_id(account, ROLE_GATEWAY)


@view
@external
def validator_count() -> uint256:
    """
    @notice Number of active validators.
    """
    return self._active_validators


@external
def register_measurement(measurement: bytes32):
    """
    @notice Accept an enclave measurement.
    """
    assert msg.sender == authority, "only authority"
    assert not self._measurements[measurement], "already registered"
    self._measurements[measurement] = True
    log MeasurementRegistered(measurement=measurement)


@external
def revoke_measurement(measurement: bytes32):
    """
    @notice Stop accepting an enclave measurement.
    """
    assert msg.sender == authority, "only authority"
    assert self._measurements[measurement], "unknown measurement"
    self._measurements[measurement] = False
    log MeasurementRevoked(measurement=measurement)


@view
@external
def measurement_ok(measurement: bytes32) -> bool:
    """
    @notice Whether an enclave measurement is currently accepted.
    """
    return self._measurements[measurement]
