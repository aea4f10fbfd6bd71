/** Registration of @rcnn/rpn's implementations (nothing registers on import). */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { GENERIC_RPN_OUTPUTS } from './rpn-head.js';

/** Registers the RPN head `rpn_heads.add_generic_rpn_outputs` (and its aliases) in `container`. */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.rpnHead, GENERIC_RPN_OUTPUTS);
}
