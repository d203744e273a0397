import { Button, Card, Descriptions, Form, Input } from 'antd';
import { useTranslation } from 'react-i18next';
import { api } from '../api';
import { useAuth } from '../auth';
import { formatTime, PageTitle, useAction } from '../components';

export function AccountPage() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const [form] = Form.useForm();
  const change = useAction(
    (v: { currentPassword: string; newPassword: string }) => api('POST', '/auth/password', v),
    { success: t('account.passwordChanged'), onSuccess: () => form.resetFields() },
  );
  if (!me) return null;
  return (
    <>
      <PageTitle title={t('nav.account')} />
      <Card style={{ marginBottom: 16 }}>
        <Descriptions column={{ xs: 1, sm: 2 }}>
          <Descriptions.Item label={t('auth.username')}>{me.user.name}</Descriptions.Item>
          <Descriptions.Item label={t('auth.tenant')}>{me.tenant.name}</Descriptions.Item>
          <Descriptions.Item label={t('users.role')}>{t(`roles.${me.user.role}`)}</Descriptions.Item>
          <Descriptions.Item label={t('tenants.accountId')}>{me.tenant.accountId}</Descriptions.Item>
          <Descriptions.Item label={t('users.lastLogin')}>{formatTime(me.user.lastLoginAt)}</Descriptions.Item>
        </Descriptions>
      </Card>
      <Card title={t('account.changePassword')} style={{ maxWidth: 480 }}>
        <Form
          form={form}
          layout="vertical"
          onFinish={(v) => change.mutate({ currentPassword: v.currentPassword, newPassword: v.newPassword })}
        >
          <Form.Item
            label={t('account.currentPassword')}
            name="currentPassword"
            rules={[{ required: true, message: t('validation.required') }]}
          >
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          <Form.Item
            label={t('account.newPassword')}
            name="newPassword"
            rules={[
              { required: true, message: t('validation.required') },
              { min: 8, message: t('validation.minChars', { n: 8 }) },
            ]}
          >
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Form.Item
            label={t('account.confirmPassword')}
            name="confirm"
            dependencies={['newPassword']}
            rules={[
              { required: true, message: t('validation.required') },
              ({ getFieldValue }) => ({
                validator: (_, v) =>
                  v === getFieldValue('newPassword') ? Promise.resolve() : Promise.reject(new Error(t('validation.mismatch'))),
              }),
            ]}
          >
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" loading={change.isPending}>
            {t('account.changePassword')}
          </Button>
        </Form>
      </Card>
    </>
  );
}
