// Vitest runs this in every test process before each test file: the process may
// reach loopback only, and so may every process a test starts (they inherit
// FEDGATE_LOOPBACK_ONLY=1; fedgate's entries guard themselves when it is set).
import '../../src/netguard/install.ts';
