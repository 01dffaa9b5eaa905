/**
 * The {{name}} service: shopping carts and the stock they draw on.
 *
 * `cart` has a history: v1 (items), v2 (coupons), v3 (a shipping address at
 * checkout). Nodes keep serving callers of the version before and after the
 * one they run, so clients and nodes can upgrade at their own pace.
 */
import { defineActorType, defineService } from 'molt';
import { cartV1 } from './cart/v1.ts';
import { cartV2 } from './cart/v2.ts';
import { cartV3 } from './cart/v3.ts';
import { inventoryV1 } from './inventory/v1.ts';

/** Carts, one actor per shopper. */
export const cart = defineActorType('cart', [cartV1, cartV2, cartV3]);

/** Stock, one actor per warehouse. */
export const inventory = defineActorType('inventory', [inventoryV1]);

export default defineService('{{name}}', [cart, inventory]);
