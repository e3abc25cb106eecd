// The file descriptor an isolated run's child writes its result to. Kept in
// a module of its own so that the child loads nothing else with it.
export const RESULT_FD = 3;

/** The child's last argument when it may refuse a run because its heap cannot grow. */
export const REFUSE_BLOCKED = 'refuse-if-blocked';
