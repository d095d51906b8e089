import { Type } from 'typebox';

/** Shapes shared by several routes. */
export const IdParams = Type.Object({ id: Type.String({ maxLength: 20 }) }, { additionalProperties: false });

export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'stable snake_case error code' }),
        message: Type.String(),
        field: Type.Optional(Type.String({ description: 'the offending field, for invalid_request' })),
        requestId: Type.String(),
      },
      { additionalProperties: true },
    ),
  },
  { $id: 'ErrorResponse', description: 'Every error has this shape.' },
);

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref('ErrorResponse')]));

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
